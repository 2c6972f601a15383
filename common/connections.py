"""Connection counters of one part in this process, and their Prometheus families.

:mod:`common.serving` bumps them; each part registers a :class:`ConnectionCollector`
in the registry its ``/metrics`` renders.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.limits import REASONS


class ConnectionStats:
    """Plain integers of one part in this process (one event loop: no locks)."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.open = 0
        self.rejected = 0
        self.closed = dict.fromkeys(REASONS, 0)


_STATS: dict[str, ConnectionStats] = {}


def connection_stats(part: str) -> ConnectionStats:
    stats = _STATS.get(part)
    if stats is None:
        stats = _STATS[part] = ConnectionStats(part)
    return stats


class ConnectionCollector:
    """Prometheus families for one part's :class:`ConnectionStats` (register per registry)."""

    def __init__(self, part: str) -> None:
        self.stats = connection_stats(part)

    def collect(self) -> Iterator[Metric]:
        s, p = self.stats, self.stats.part
        yield GaugeMetricFamily(
            f"{p}_connections_open", "Client connections open in this process", value=s.open
        )
        yield CounterMetricFamily(
            f"{p}_connections_rejected",
            "Connections refused (503) because the worker had max_connections open",
            value=s.rejected,
        )
        c = CounterMetricFamily(
            f"{p}_connections_closed_by_limit",
            "Connections closed by a bound (header size or time, idle, body size)",
            labels=["reason"],
        )
        for reason, n in s.closed.items():
            c.add_metric([reason], n)
        yield c
