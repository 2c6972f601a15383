"""Prometheus metrics of the origin server.

Each app gets its own registry, so several apps in one process (tests, an
embedded origin) never clash over metric names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from common.connections import ConnectionCollector

T = TypeVar("T")

# Store calls range from sub-millisecond disk stats to slow remote opens.
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class OriginMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "origin_http_requests",
            "HTTP requests answered, by method and status code.",
            ["method", "status"],
            registry=self.registry,
        )
        self.bytes_sent = Counter(
            "origin_http_response_body_bytes",
            "Response body bytes sent.",
            registry=self.registry,
        )
        self.streams = Gauge(
            "origin_http_streams_in_flight",
            "Object bodies being streamed right now.",
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "origin_store_operation_seconds",
            "Latency of object-store calls (opening a read, not streaming it).",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "origin_store_errors",
            "Object-store calls that failed, by operation and error class.",
            ["operation", "error"],
            registry=self.registry,
        )
        # origin_connections_open / _rejected_total / _closed_by_limit_total (common.serving)
        self.registry.register(ConnectionCollector("origin"))

    def timed(self, operation: str, call: Callable[[], T]) -> T:
        """Run ``call`` (in the caller's thread), recording its latency and failure."""
        started = time.perf_counter()
        try:
            return call()
        except Exception as exc:
            self.store_errors.labels(operation, type(exc).__name__).inc()
            raise
        finally:
            self.store_seconds.labels(operation).observe(time.perf_counter() - started)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
