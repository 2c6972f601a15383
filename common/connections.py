"""Connection counters of one part in this process, and their Prometheus metrics.

:mod:`common.serving` bumps plain integers on :class:`ConnectionStats` (once per
connection or refusal, on every server's accept path); :meth:`ConnectionStats.flush`
adds them to real prometheus-client metrics (:class:`common.metrics.Flusher`), so
they work in multiprocess mode too: ``<part>_connections_open`` is a ``livesum``
gauge (the open connections of every live worker),
``<part>_connections_rejected_total`` and
``<part>_connections_closed_by_limit_total{reason}`` are counters. Each part
registers a :class:`ConnectionCollector` in the registry its ``/metrics`` renders.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.core import Metric

from common.limits import REASONS
from common.metrics import Flusher, flush, register_flush


class ConnectionStats:
    """Plain integers of one part in this process (one event loop: no locks)."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.open = 0
        self.rejected = 0
        self.closed = dict.fromkeys(REASONS, 0)
        # Not in any registry: every app of the part renders them (ConnectionCollector).
        self.open_gauge = Gauge(
            f"{part}_connections_open",
            "Client connections open (the sum over live worker processes)",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.rejected_total = Counter(
            f"{part}_connections_rejected",
            "Connections refused (503) because the worker had max_connections open",
            registry=None,
        )
        self.closed_total = Counter(
            f"{part}_connections_closed_by_limit",
            "Connections closed by a bound (header size or time, idle, body size)",
            ["reason"],
            registry=None,
        )
        self._flusher = Flusher()
        for reason in REASONS:  # every reason shows, at 0 until it happens
            self._flusher.child(self.closed_total, reason)
        register_flush(self)

    def flush(self) -> None:
        f = self._flusher
        f.set(self.open_gauge, self.open)
        f.add(self.rejected_total, self.rejected)
        f.counts(self.closed_total, self.closed)


_STATS: dict[str, ConnectionStats] = {}


def connection_stats(part: str) -> ConnectionStats:
    stats = _STATS.get(part)
    if stats is None:
        stats = _STATS[part] = ConnectionStats(part)
    return stats


class ConnectionCollector:
    """One part's connection metrics, for each registry that renders them."""

    def __init__(self, part: str) -> None:
        self.stats = connection_stats(part)

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        flush(s)
        yield from s.open_gauge.collect()
        yield from s.rejected_total.collect()
        yield from s.closed_total.collect()
