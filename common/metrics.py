"""Prometheus for every part: which registry ``/metrics`` renders, one process or every worker.

With ONE process (the default, and every in-process test) each app keeps its own
:class:`~prometheus_client.CollectorRegistry` and ``/metrics`` renders it.

With several uvicorn workers sharing one port (``delivery serve --workers N``,
``edge serve --workers N``) a scrape reaches one random worker, so the workers use
prometheus-client's multiprocess mode: every metric value lives in a small mmap'ed
file under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` merges every worker's
files, so **one scrape reports every worker**: counters and histograms are summed,
each gauge is combined as its ``multiprocess_mode`` says (``livesum`` for
per-process amounts such as open connections, ``livemostrecent`` for views of
shared state such as the edge's disk cache, which must not be summed).

* :func:`multiprocess_metrics` is the command line's half: around ``uvicorn.run``
  with ``workers > 1`` it creates a fresh private directory (under the temporary
  directory), sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts and
  removes the directory when the server stops. A directory the operator set in
  ``PROMETHEUS_MULTIPROC_DIR`` is used instead (with any number of workers); its
  ``*.db`` files are wiped at start, so counts from a previous run never add up,
  and it is left in place.
* :func:`render` is the worker's half: this process's registry, or every worker's
  files. It also drops the live gauges of workers that died without saying so
  (:func:`~prometheus_client.multiprocess.mark_process_dead`); a worker that shuts
  down marks itself dead (:func:`process_stopping`).
* :class:`Flusher` is for counters on a hot path. prometheus-client's
  ``Counter.inc`` writes the mmap on every call: measured here 0.73 us per call in
  multiprocess mode (0.30 us in-process) against 0.03 us for ``n += 1``; the edge
  bumps three or four counters per 40 us range hit, so that would cost it 5-7%.
  Such counters stay plain ints, and their owner's ``flush()`` adds what they
  gained to real Counter / Gauge objects: on every scrape, at exit and, in
  multiprocess mode, once a second from a daemon thread (so another worker's
  scrape sees them at most :data:`FLUSH_INTERVAL_S` late).

The mode is decided when ``prometheus_client`` is first imported (its value
class), so the directory must be in the environment before a worker starts;
:func:`multiprocess_dir` answers from what the process really uses.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from common.processes import pid_alive

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
FLUSH_INTERVAL_S = 1.0
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The directory this process's metrics are written to, or None (one process).

    True only when ``prometheus_client`` was imported with ``PROMETHEUS_MULTIPROC_DIR``
    set (its values are then mmap'ed); setting the variable later changes nothing.
    """
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get(ENV) or None


# -- the command line's half -------------------------------------------------------


def wipe(path: str | Path) -> None:
    """Remove the metric files (``*.db``) of earlier runs from ``path``."""
    for entry in Path(path).glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()


@contextlib.contextmanager
def multiprocess_metrics(part: str, workers: int) -> Iterator[str | None]:
    """Around a server's run: the directory its workers share metrics through, or None.

    ``workers > 1``: a fresh private directory in ``PROMETHEUS_MULTIPROC_DIR`` for
    the worker processes about to be spawned, removed afterwards. An operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is honoured whatever the count: created if missing,
    emptied of earlier runs' files, kept. One worker and no operator's directory:
    nothing changes (each app renders its own registry).
    """
    chosen = os.environ.get(ENV)
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        wipe(chosen)
        log.info("metrics of every %s worker are merged from %s=%s", part, ENV, chosen)
        try:
            yield chosen
        finally:
            forget_dead_workers(chosen)  # the live gauges of workers killed on the way out
        return
    if workers <= 1:
        yield None
        return
    private = tempfile.mkdtemp(prefix=f"audiocdn-{part}-metrics-")
    os.environ[ENV] = private
    log.info("metrics of the %d %s workers are merged from %s", workers, part, private)
    try:
        yield private
    finally:
        if os.environ.get(ENV) == private:
            del os.environ[ENV]
        shutil.rmtree(private, ignore_errors=True)


# -- the worker's half -------------------------------------------------------------


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text of ``/metrics``: ``registry``, or every worker's metrics."""
    flush_all()
    path = multiprocess_dir()
    if path is None:
        return generate_latest(registry)
    _worker_hooks()
    forget_dead_workers(path)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path)
    return generate_latest(merged)


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that are gone (killed ones never marked themselves)."""
    me = os.getpid()
    with contextlib.suppress(OSError):
        for name in os.listdir(path):
            m = _LIVE_GAUGE_FILE.fullmatch(name)
            if m and int(m[1]) != me and not pid_alive(int(m[1])):
                mark_process_dead(int(m[1]), path)


# -- plain ints flushed into metrics -----------------------------------------------


class Flushable(Protocol):
    def flush(self) -> None: ...


_flushables: weakref.WeakSet[Any] = weakref.WeakSet()
_flush_lock = threading.Lock()  # one flush at a time: two would add the same gain twice
_flusher: threading.Thread | None = None


def register_flush(owner: Flushable) -> None:
    """Call ``owner.flush()`` before every render, at exit and (multiprocess) every second.

    ``owner`` is held weakly: an app that is dropped stops being flushed.
    """
    with _flush_lock:
        _flushables.add(owner)
    _worker_hooks()


def _worker_hooks() -> None:
    """In a multiprocess worker, once: the flushing thread and the exit hook."""
    global _flusher
    if multiprocess_dir() is None:
        return
    with _flush_lock:
        if _flusher is None:
            _flusher = threading.Thread(target=_flush_loop, name="metrics-flush", daemon=True)
            _flusher.start()
            atexit.register(process_stopping)


def flush(owner: Flushable) -> None:
    """``owner.flush()`` now (a collector's, before it yields its metrics)."""
    with _flush_lock:
        owner.flush()


def flush_all() -> None:
    with _flush_lock:
        for owner in list(_flushables):
            try:
                owner.flush()
            except Exception:  # a metric must never take a request or the flusher down
                log.exception("flushing metrics failed")


def _flush_loop() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_S)
        flush_all()


def process_stopping() -> None:
    """This worker is about to exit: its last counts flushed, its live gauges dropped.

    Called at the app's lifespan shutdown (the request wrapper does it for origin and
    delivery, the edge's shutdown for the edge) and at exit. uvicorn re-raises the
    SIGTERM that stopped a worker once it has shut down, so ``atexit`` alone would
    never run in a worker stopped that way.
    """
    flush_all()
    path = multiprocess_dir()
    if path is not None:
        with contextlib.suppress(OSError):
            mark_process_dead(os.getpid(), path)


class Flusher:
    """Adds to prometheus-client metrics what plain ints gained since the last flush.

    ``add(counter, value)`` increments ``counter`` (a Counter or a labelled child) by
    ``value`` minus the value seen last time; ``counts(counter, {label: n})`` does it
    per label; ``set(gauge, value)`` sets a gauge when its value changed (so a
    ``mostrecent`` gauge keeps the time its value last moved).
    """

    def __init__(self) -> None:
        self._last: dict[int, float] = {}
        self._children: dict[tuple[int, str], Any] = {}

    def add(self, counter: Any, value: float) -> None:
        key = id(counter)
        gained = value - self._last.get(key, 0)
        if gained:
            self._last[key] = value
            if gained > 0:
                counter.inc(gained)

    def child(self, metric: Any, label: str) -> Any:
        key = (id(metric), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(label)
        return child

    def counts(self, counter: Any, counts: Mapping[Any, int]) -> None:
        for label, n in dict(counts).items():  # a copy: the event loop may add labels
            self.add(self.child(counter, str(label)), n)

    def set(self, gauge: Any, value: float) -> None:
        key = id(gauge)
        if self._last.get(key) != value:
            self._last[key] = value
            gauge.set(value)
