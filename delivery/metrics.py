"""Prometheus metrics of the delivery service (``GET /metrics``).

One registry per app, so several apps in one process (tests) never collide. With
``delivery serve --workers N`` the workers share their metrics through
prometheus-client's multiprocess mode and one scrape reports every worker
(:mod:`common.metrics`): counters and histograms summed over the workers.

* ``delivery_http_requests_total{method,route,status}`` and
  ``delivery_http_request_duration_seconds{method,route}`` — ``route`` is the
  route template (``/v1/tracks/{track_id}/stream``), never the raw path, so the
  label set stays bounded whatever clients send.
* ``delivery_url_signatures_total{signer}`` — every URL signed.
* ``delivery_stream_answers_total{tier,bitrate,capped}`` — what was served.
* ``delivery_rate_limited_total`` and ``delivery_catalog_store_reads_total``.
* ``delivery_connections_open``, ``delivery_connections_rejected_total`` and
  ``delivery_connections_closed_by_limit_total{reason}`` (:mod:`common.serving`).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from common.connections import ConnectionCollector
from common.metrics import CONTENT_TYPE
from common.metrics import render as render_registry
from common.request_wrapper import Request, RequestWrapper

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DeliveryMetrics:
    content_type = CONTENT_TYPE

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "delivery_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "delivery_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.signatures = Counter("delivery_url_signatures", "URLs signed", ["signer"], registry=r)
        self.stream_answers = Counter(
            "delivery_stream_answers",
            "Stream URL answers",
            ["tier", "bitrate", "capped"],
            registry=r,
        )
        self.rate_limited = Counter(
            "delivery_rate_limited", "Stream requests refused by the rate limit", registry=r
        )
        self.rate_limit_errors = Counter(
            "delivery_rate_limit_errors",
            "Stream requests let through unchecked: the rate-limit engine did not answer",
            registry=r,
        )
        self.catalog_reads = Counter(
            "delivery_catalog_store_reads", "Catalog reads that reached the store", registry=r
        )
        # delivery_connections_open / _rejected_total / _closed_by_limit_total (common.serving)
        r.register(ConnectionCollector("delivery"))
        # Resolving a labelled child costs a dict build and lock; the hot path reuses them.
        self._children: dict[tuple, Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, method, route, str(status)).inc()
        self._child(self.latency, method, route).observe(seconds)

    def signed(self, signer: str, count: int = 1) -> None:
        self._child(self.signatures, signer).inc(count)

    def stream_answer(self, tier: str, bitrate: int, capped: bool) -> None:
        self._child(self.stream_answers, tier, str(bitrate), "true" if capped else "false").inc()

    def render(self) -> bytes:
        """This worker's registry, or every worker's metrics (common.metrics)."""
        return render_registry(self.registry)


def _route_template(scope: dict) -> str:
    """The matched route's template (``/v1/tracks/{track_id}/stream``), never the raw path."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


class MetricsMiddleware(RequestWrapper):
    """Delivery's :class:`common.request_wrapper.RequestWrapper`: the request id
    (``X-Request-Id``, reused when well-formed, echoed, bound to every log line of the
    request), ``delivery_http_requests_total`` / ``..._duration_seconds`` by route
    template, and one JSON access-log line (``delivery.access``) per request."""

    def __init__(self, app: Any, metrics: DeliveryMetrics, access_log: bool = True) -> None:
        self.metrics = metrics
        super().__init__(
            app,
            part="delivery",
            observe=self._observe,
            route=_route_template,
            access_log=access_log,
        )

    def _observe(self, request: Request) -> None:
        self.metrics.observe_request(
            request.method, request.route or "unmatched", request.status, request.seconds
        )
