"""Counters of one edge process and their Prometheus exposition (``GET /metrics``).

The hot path only bumps plain integers on :class:`EdgeStats` (no locks, no
label lookups); :class:`EdgeCollector` turns them into Prometheus families when
``/metrics`` is scraped. With several workers each process reports its own
counters (scrape each worker, or sum in Prometheus); the disk-cache gauges are
shared state and therefore the same in every worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from common.connections import ConnectionCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _histogram(name: str, doc: str) -> Histogram:
    return Histogram(name, doc, buckets=LATENCY_BUCKETS, registry=None)


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
        # Observed once per fill, not per request: prometheus-client's own type (unregistered:
        # several apps may live in one process; the collector below yields them).
        self.origin_ttfb = _histogram(
            "edge_origin_ttfb_seconds", "Time to the upstream's response headers"
        )
        self.fill_duration = _histogram(
            "edge_fill_duration_seconds", "Duration of a whole-object fill"
        )

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1


def _counts(name: str, doc: str, label: str, counts: dict) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([str(value)], n)
    return family


class EdgeCollector:
    """Reads :class:`EdgeStats` and live values (``live()``, see ``EdgeApp``) at scrape time."""

    def __init__(self, stats: EdgeStats, live: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.live = live

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        results = {
            "hit_memory": s.hits_memory,
            "hit_disk": s.hits_disk,
            "miss": s.misses,
            "coalesced": s.coalesced,
        }
        yield _counts("edge_cache_requests", "Object requests by cache outcome", "result", results)
        yield CounterMetricFamily(
            "edge_bytes_sent", "Body bytes sent to clients", value=s.bytes_sent
        )
        yield _counts("edge_responses", "Responses by HTTP status", "status", s.responses)
        yield _counts("edge_errors", "Refused or failed requests by reason", "reason", s.errors)
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
        yield _counts(
            "edge_fill_failures", "Fills that failed, by reason", "reason", s.fill_failures
        )
        yield from s.origin_ttfb.collect()
        yield from s.fill_duration.collect()
        g = self.live()
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
        yield _counts(
            "edge_cache_evictions", "Objects evicted by this process", "tier", g["evictions"]
        )
        requests = g["upstream_requests"]
        yield CounterMetricFamily(
            "edge_upstream_requests", "Requests sent upstream", value=requests
        )
        failures = g["upstream_failures"]
        yield _counts("edge_upstream_failures", "Failed upstream attempts", "reason", failures)
        m = GaugeMetricFamily("edge_upstream_circuit_open", "1 while an upstream's breaker is open",
                              labels=["upstream"])  # fmt: skip
        for up in g["upstreams"]:
            m.add_metric([up["upstream"]], 1 if up["breaker"] != "closed" else 0)
        yield m
        yield GaugeMetricFamily(
            "edge_upstream_up",
            "1 when an upstream answers its readiness probe; 0: degraded, serving from cache",
            value=1 if g["upstream_up"] else 0,
        )


def render(collector: EdgeCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    # edge_connections_open / _rejected_total / _closed_by_limit_total (common.serving)
    registry.register(ConnectionCollector("edge"))
    return generate_latest(registry)
