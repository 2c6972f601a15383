"""Counters of one edge process and their Prometheus exposition (``GET /metrics``).

The hot path only bumps plain integers on :class:`EdgeStats` (no locks, no
label lookups); :class:`EdgeCollector` turns them into Prometheus families when
``/metrics`` is scraped. With several workers each process reports its own
counters (scrape each worker, or sum in Prometheus); the disk-cache gauges are
shared state and therefore the same in every worker.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from common.connections import ConnectionCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """A cumulative-bucket histogram without locks (one event loop per process)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class EdgeStats:
    """Plain counters bumped by the request path and the fills."""

    def __init__(self) -> None:
        self.hits_memory = 0
        self.hits_disk = 0
        self.misses = 0
        self.coalesced = 0
        self.bytes_sent = 0
        self.responses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.origin_fetches = 0
        self.origin_resumes = 0
        self.origin_bytes = 0
        self.fill_failures: dict[str, int] = {}
        self.origin_ttfb = Histogram()
        self.fill_duration = Histogram()

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1


class EdgeCollector:
    """Reads :class:`EdgeStats` and live gauges at scrape time."""

    def __init__(self, stats: EdgeStats, gauges: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        c = CounterMetricFamily(
            "edge_cache_requests", "Object requests by cache outcome", labels=["result"]
        )
        c.add_metric(["hit_memory"], s.hits_memory)
        c.add_metric(["hit_disk"], s.hits_disk)
        c.add_metric(["miss"], s.misses)
        c.add_metric(["coalesced"], s.coalesced)
        yield c
        yield CounterMetricFamily(
            "edge_bytes_sent", "Body bytes sent to clients", value=s.bytes_sent
        )
        c = CounterMetricFamily("edge_responses", "Responses by HTTP status", labels=["status"])
        for status, n in sorted(s.responses.items()):
            c.add_metric([str(status)], n)
        yield c
        c = CounterMetricFamily(
            "edge_errors", "Refused or failed requests by reason", labels=["reason"]
        )
        for reason, n in sorted(s.errors.items()):
            c.add_metric([reason], n)
        yield c
        yield CounterMetricFamily(
            "edge_origin_fetches", "Whole-object fills started upstream", value=s.origin_fetches
        )
        yield CounterMetricFamily(
            "edge_origin_resumes", "Fills resumed with a Range after a broken transfer",
            value=s.origin_resumes,
        )  # fmt: skip
        yield CounterMetricFamily(
            "edge_origin_bytes", "Bytes received from upstream", value=s.origin_bytes
        )
        c = CounterMetricFamily(
            "edge_fill_failures", "Fills that failed, by reason", labels=["reason"]
        )
        for reason, n in sorted(s.fill_failures.items()):
            c.add_metric([reason], n)
        yield c
        for name, doc, h in (
            ("edge_origin_ttfb_seconds", "Time to the upstream's response headers", s.origin_ttfb),
            ("edge_fill_duration_seconds", "Duration of a whole-object fill", s.fill_duration),
        ):
            m = HistogramMetricFamily(name, doc)
            m.add_metric([], h.cumulative(), sum_value=h.sum)
            yield m
        g = self.gauges()
        for name, doc in (
            ("memory_bytes", "Bytes held by this process's memory tier"),
            ("memory_objects", "Objects in this process's memory tier"),
            ("disk_bytes", "Bytes in the shared disk tier (as of the last scan)"),
            ("disk_objects", "Entries in the shared disk tier (as of the last scan)"),
            ("fills_in_progress", "Fills this process is running or tailing"),
        ):
            yield GaugeMetricFamily(
                f"edge_cache_{name}" if "fills" not in name else f"edge_{name}", doc, value=g[name]
            )
        m = GaugeMetricFamily("edge_upstream_circuit_open", "1 while an upstream's breaker is open",
                              labels=["upstream"])  # fmt: skip
        for up in g["upstreams"]:
            m.add_metric([up["upstream"]], 1 if up["breaker"] != "closed" else 0)
        yield m


def render(collector: EdgeCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    # edge_connections_open / _rejected_total / _closed_by_limit_total (common.serving)
    registry.register(ConnectionCollector("edge"))
    return generate_latest(registry)
