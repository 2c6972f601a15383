"""Modules attached to the delivery service: playlists, search, social, plays.

:func:`install_modules` is called by the delivery app factory after it has set
``app.state.db`` (a :class:`delivery.db.Database`, migrated), ``app.state.store``
(an :class:`origin.store.ObjectStore`), ``app.state.settings`` and
``app.state.authenticator``. It

* creates ``app.state.events`` (a :class:`delivery.outbox.OutboxEventBus` on
  ``app.state.db``) if the factory did not,
* builds the services once (``app.state.modules``, see :mod:`.container`) with
  :class:`.settings.ModulesSettings` read from the environment (or
  ``app.state.modules_settings`` when set, e.g. by tests),
* subscribes the event handlers: search indexing on ``track.published`` and
  ``playlist.changed``, popularity and friends-listened on ``play.recorded``,
* includes the routers (playlists, search, social/plays, admin events).

``delivery catalog sync`` lives in :mod:`.cli` (added by the ``delivery`` command line).
"""

from __future__ import annotations

from fastapi import FastAPI

from delivery.modules.settings import ModulesSettings, load_modules_settings


def install_modules(app: FastAPI, settings: ModulesSettings | None = None) -> None:
    """Wire the modules into ``app`` (see the module docstring)."""
    from delivery.modules import api_admin, api_playlists, api_search, api_social
    from delivery.modules.container import build_modules

    settings = settings or getattr(app.state, "modules_settings", None) or load_modules_settings()
    db = getattr(app.state, "db", None)
    if db is None:
        raise RuntimeError("install_modules needs app.state.db (a migrated delivery.db.Database)")
    # The delivery app keeps its own Prometheus registry (served on /metrics); use it.
    registry = getattr(getattr(app.state, "metrics", None), "registry", None)
    events = getattr(app.state, "events", None)
    if events is None:
        from delivery.outbox import OutboxEventBus

        events = OutboxEventBus(
            db,
            max_attempts=settings.events_max_attempts,
            poll_s=settings.events_poll_s,
            lease_s=settings.events_lease_s,
            retention_s=settings.events_retention_s,
            redis_url=getattr(getattr(app.state, "settings", None), "redis_url", None),
            registry=registry,
        )
        app.state.events = events
    modules = build_modules(db, getattr(app.state, "store", None), events, settings, registry)
    modules.subscribe_handlers()
    app.state.modules = modules
    app.state.modules_settings = settings
    for module in (api_playlists, api_search, api_social, api_admin):
        app.include_router(module.router)


__all__ = ["ModulesSettings", "install_modules"]
