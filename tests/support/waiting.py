"""Waiting in tests: every wait has a deadline and says what it waited for.

Use :func:`wait_for` (threads, processes, files) or :func:`wait_for_async`
(inside an event loop) instead of ``while ...: sleep(...)`` loops. The poll
interval starts small and grows, so a condition that holds soon is seen soon
and a slow one does not spin the CPU; the deadline turns a hang into a failure
that names the condition (and, with ``detail``, the state it was in).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

FIRST_INTERVAL_S = 0.005
MAX_INTERVAL_S = 0.1


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline."""


def _timed_out(what: str, timeout: float, detail: Callable[[], object] | None) -> WaitTimeout:
    message = f"timed out after {timeout:g} s waiting for {what}"
    if detail is not None:
        try:
            message += f"; {detail()}"
        except Exception as exc:  # the detail is a courtesy: never hide the timeout
            message += f"; (detail failed: {exc!r})"
    return WaitTimeout(message)


def wait_for(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float = 10.0,
    detail: Callable[[], object] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises :class:`WaitTimeout` (an ``AssertionError``) naming ``what`` after
    ``timeout`` seconds; ``detail()`` is appended to the message. Exceptions
    raised by ``predicate`` propagate at once (catch them inside it to retry).
    """
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL_S
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(what, timeout, detail)
        time.sleep(min(interval, left))
        interval = min(interval * 2, MAX_INTERVAL_S)


async def wait_for_async(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    what: str,
    timeout: float = 10.0,
    detail: Callable[[], object] | None = None,
) -> T:
    """:func:`wait_for` for code running in an event loop: it yields to the loop between
    polls, and ``predicate`` may be a coroutine function (e.g. one that asks a server)."""
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL_S
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(what, timeout, detail)
        await anyio.sleep(min(interval, left))
        interval = min(interval * 2, MAX_INTERVAL_S)
