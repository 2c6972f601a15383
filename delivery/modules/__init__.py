"""Modules attached to the delivery service: playlists, search, social, plays.

:func:`install_modules` is called by the delivery app factory after it has set
``app.state.db`` (a :class:`delivery.db.Database`), ``app.state.store`` (an
:class:`origin.store.ObjectStore`) and ``app.state.settings``.
"""

from __future__ import annotations

from fastapi import FastAPI


def install_modules(app: FastAPI) -> None:
    """Attach the module routers to ``app`` (filled in by the modules work)."""


def add_cli_commands(subparsers) -> None:
    """Add the modules' subcommands (e.g. ``catalog sync``) to the ``delivery`` CLI parser."""
