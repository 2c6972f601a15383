"""Scratch directories for renditions being built, removed however an ingest ends.

A normal exit, an exception, SIGTERM or Ctrl-C (the CLI turns both into
SystemExit) all remove the directory in ``__exit__``. Only SIGKILL or a power
cut can leave one behind, so each directory records its owner's pid and every
new ingest sweeps the directories whose owner is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from common.processes import pid_alive

_PREFIX = "ingest-"
_OWNER = "owner"
_JUNK_AFTER_S = 3600.0


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def sweep_stale(root: Path) -> list[Path]:
    """Remove work directories under ``root`` left by processes that no longer run here."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    host = socket.gethostname()
    for path in root.glob(f"{_PREFIX}*"):
        try:
            owner_host, pid = (path / _OWNER).read_text().split()
            if owner_host != host or pid_alive(int(pid)):
                continue
        except FileNotFoundError:
            continue  # being created right now, or not ours
        except (OSError, ValueError):
            # Unreadable owner file: junk only once it is old. A young one may belong to an
            # ingest that is being set up in another process right now.
            if _age_s(path) < _JUNK_AFTER_S:
                continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class WorkDir(contextlib.AbstractContextManager):
    """``with WorkDir(root) as path:`` — a private directory that is gone afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        sweep_stale(self.root)
        self.path = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=self.root))
        # Written under another name, then renamed: a concurrent sweep either finds no owner
        # file (and skips the directory) or a complete one, never an empty one.
        tmp = self.path / f".{_OWNER}.tmp"
        tmp.write_text(f"{socket.gethostname()} {os.getpid()}\n")
        os.replace(tmp, self.path / _OWNER)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
