"""Single-flight: concurrent callers asking for the same key share one run of the work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SingleFlight:
    """At most one run of ``work()`` per key at a time; every caller meanwhile gets its result.

    The run is a task of its own, shielded from its callers: one caller giving up
    (cancelled) does not cancel the answer the others wait for. A failure is raised
    to every caller of that run; the next call after it starts afresh.
    (The edge's fills share a growing object rather than a result: :mod:`edge.fill`.)
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)

    def _finished(self, key: Hashable, done: asyncio.Future) -> None:
        self._running.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: a run whose callers all left is not an error
