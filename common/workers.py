"""The worker count a platform asks for: ``WEB_CONCURRENCY``.

Heroku, Render, Dokku and others set ``WEB_CONCURRENCY`` for every web process.
uvicorn reads it on its own whenever ``workers`` is not given, and then refuses
an application object (exit 3). So every part passes ``workers`` explicitly and
takes its default from here: ``<PART>_WORKERS`` when set, else
``WEB_CONCURRENCY``, else 1. A ``WEB_CONCURRENCY`` that is not a count (it is
the platform's variable, not ours) is ignored with a warning, never fatal.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

MAX_WORKERS = 64


def web_concurrency() -> int:
    """``WEB_CONCURRENCY`` as a worker count (1 when unset or not a count)."""
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not raw:
        return 1
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_WORKERS:
        log.warning(
            "WEB_CONCURRENCY=%r ignored: expected a whole number 1-%d", raw[:20], MAX_WORKERS
        )
        return 1
    return int(raw)
