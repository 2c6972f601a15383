"""Counters of one edge process and their Prometheus exposition (``GET /metrics``).

The hot path only bumps plain integers on :class:`EdgeStats` (no locks, no label
lookups, no mmap writes); :class:`EdgeCollector` adds what they gained to real
prometheus-client metrics when it is flushed (:class:`common.metrics.Flusher`:
before every scrape and, with several workers, every second and at exit). So with
``edge serve --workers N`` one scrape reports every worker (:mod:`common.metrics`):
counters are summed over the workers, the memory tier and the fills in progress
are summed over the live workers, and the disk tier, being shared by the workers,
is the most recent view any worker had of it (never a sum). The upstream's
``edge_upstream_up`` is what the scraped worker's probe saw (at most 2 s old);
``edge_upstream_circuit_open`` is 1 while any worker's breaker is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.connections import ConnectionCollector
from common.metrics import Flusher, register_flush
from common.metrics import render as render_registry

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CACHE_RESULTS = ("hit_memory", "hit_disk", "miss", "coalesced")


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
        # several apps may live in one process; each app's collector registers its own).
        self.origin_ttfb = _histogram(
            "edge_origin_ttfb_seconds", "Time to the upstream's response headers"
        )
        self.fill_duration = _histogram(
            "edge_fill_duration_seconds", "Duration of a whole-object fill"
        )

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1


class EdgeCollector:
    """The edge's metrics: :class:`EdgeStats` and live values (``live()``, see ``EdgeApp``),
    flushed into prometheus-client metrics of one registry (this app's)."""

    def __init__(self, stats: EdgeStats, live: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.live = live
        self.registry = r = CollectorRegistry(auto_describe=False)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def gauge(name: str, doc: str, mode: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r, multiprocess_mode=mode)

        self.cache_requests = counter(
            "edge_cache_requests", "Object requests by cache outcome", "result"
        )
        self.bytes_sent = counter("edge_bytes_sent", "Body bytes sent to clients")
        self.responses = counter("edge_responses", "Responses by HTTP status", "status")
        self.errors = counter("edge_errors", "Refused or failed requests by reason", "reason")
        self.origin_fetches = counter("edge_origin_fetches", "Whole-object fills started upstream")
        self.origin_resumes = counter(
            "edge_origin_resumes", "Fills resumed with a Range after a broken transfer"
        )
        self.origin_bytes = counter("edge_origin_bytes", "Bytes received from upstream")
        self.fill_failures = counter("edge_fill_failures", "Fills that failed, by reason", "reason")
        r.register(stats.origin_ttfb)
        r.register(stats.fill_duration)
        # Per process: summed over the live workers.
        self.memory_bytes = gauge(
            "edge_cache_memory_bytes", "Bytes held by the memory tiers (one per process)", "livesum"
        )
        self.memory_objects = gauge(
            "edge_cache_memory_objects", "Objects in the memory tiers (one per process)", "livesum"
        )
        # Shared by the workers: the latest view any of them had, never a sum.
        self.disk_bytes = gauge(
            "edge_cache_disk_bytes",
            "Bytes in the shared disk tier (as of the last scan)",
            "livemostrecent",
        )
        self.disk_objects = gauge(
            "edge_cache_disk_objects",
            "Entries in the shared disk tier (as of the last scan)",
            "livemostrecent",
        )
        self.fills_in_progress = gauge(
            "edge_fills_in_progress", "Fills the processes are running or tailing", "livesum"
        )
        self.evictions = counter("edge_cache_evictions", "Objects evicted", "tier")
        self.upstream_requests = counter("edge_upstream_requests", "Requests sent upstream")
        self.upstream_failures = counter(
            "edge_upstream_failures", "Failed upstream attempts", "reason"
        )
        self.circuit_open = gauge(
            "edge_upstream_circuit_open",
            "1 while an upstream's breaker is open (in any worker)",
            "livemax",
            "upstream",
        )
        self.circuit_trips = counter(
            "edge_upstream_circuit_trips",
            "Times an upstream's breaker opened",
            "upstream",
        )
        self.upstream_up = gauge(
            "edge_upstream_up",
            "1 when an upstream answers its readiness probe; 0: degraded, serving from cache",
            "livemostrecent",
        )
        # edge_connections_open / _rejected_total / _closed_by_limit_total (common.serving)
        r.register(ConnectionCollector("edge"))
        self._flusher = f = Flusher()
        for result in CACHE_RESULTS:  # shown at 0 until they happen
            f.child(self.cache_requests, result)
        for tier in ("memory", "disk"):
            f.child(self.evictions, tier)
        register_flush(self)

    def flush(self) -> None:
        """Add what the plain counters gained; set the gauges that moved."""
        f, s = self._flusher, self.stats
        requests = self.cache_requests
        f.add(f.child(requests, "hit_memory"), s.hits_memory)
        f.add(f.child(requests, "hit_disk"), s.hits_disk)
        f.add(f.child(requests, "miss"), s.misses)
        f.add(f.child(requests, "coalesced"), s.coalesced)
        f.add(self.bytes_sent, s.bytes_sent)
        f.counts(self.responses, s.responses)
        f.counts(self.errors, s.errors)
        f.add(self.origin_fetches, s.origin_fetches)
        f.add(self.origin_resumes, s.origin_resumes)
        f.add(self.origin_bytes, s.origin_bytes)
        f.counts(self.fill_failures, s.fill_failures)
        g = self.live()
        f.set(self.memory_bytes, g["memory_bytes"])
        f.set(self.memory_objects, g["memory_objects"])
        f.set(self.disk_bytes, g["disk_bytes"])
        f.set(self.disk_objects, g["disk_objects"])
        f.set(self.fills_in_progress, g["fills_in_progress"])
        f.counts(self.evictions, g["evictions"])
        f.add(self.upstream_requests, g["upstream_requests"])
        f.counts(self.upstream_failures, g["upstream_failures"])
        for up in g["upstreams"]:
            name = up["upstream"]
            f.set(f.child(self.circuit_open, name), 1 if up["breaker"] != "closed" else 0)
            f.add(f.child(self.circuit_trips, name), up["trips"])

    def scraped(self) -> None:
        """The values only a scrape refreshes (the upstream probe), set now: the most recent
        scrape's view wins over an older one in another worker."""
        self.upstream_up.set(1 if self.live()["upstream_up"] else 0)


def render(collector: EdgeCollector) -> bytes:
    collector.scraped()
    return render_registry(collector.registry)
