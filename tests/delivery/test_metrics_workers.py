"""One scrape of ``/metrics`` reports every worker of ``delivery serve --workers N``.

Real processes: the workers share their metrics through prometheus-client's
multiprocess mode (:mod:`common.metrics`). Requests on fresh connections are
spread over the workers by the kernel; each worker's own file shows it answered
some, and ONE scrape, answered by one of them, must count them all.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from tests.support.prometheus import per_worker, scrape, total
from tests.support.servers import part_env, serve_delivery
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # real multi-worker servers

WORKERS = 2
REQUESTS = "delivery_http_requests_total"


def delivery_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "store").mkdir(exist_ok=True)
    env = part_env(
        "DELIVERY_",
        DELIVERY_STORE=f"file://{tmp_path / 'store'}",
        DELIVERY_DATA_DIR=str(tmp_path / "data"),
        DELIVERY_DATABASE_URL=f"sqlite:///{tmp_path / 'delivery.db'}",
        DELIVERY_EDGE_URL="http://127.0.0.1:9",
        DELIVERY_DEV_MODE="true",
        DELIVERY_ACCESS_LOG="false",
        DELIVERY_LOG_LEVEL="info",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a developer's own must not leak in
    env.update(extra)
    return env


def hit_every_worker(base: str, directory: Path) -> int:
    """GET /healthz on fresh connections until every worker answered some; how many were sent."""
    sent = 0
    lock = threading.Lock()

    def batch() -> None:
        nonlocal sent
        for _ in range(10):
            answer = httpx.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=10)
            assert answer.status_code == 200
            with lock:
                sent += 1

    def every_worker_answered() -> bool:
        threads = [threading.Thread(target=batch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shares = per_worker(directory, REQUESTS, route="/healthz")
        return len(shares) == WORKERS and all(shares.values())

    wait_for(
        every_worker_answered,
        what=f"requests answered by all {WORKERS} workers",
        timeout=60,
        detail=lambda: per_worker(directory, REQUESTS, route="/healthz"),
    )
    return sent


def test_one_scrape_counts_the_requests_of_every_worker(tmp_path):
    # The server's private metrics directory is made under its TMPDIR, so the test can
    # look at each worker's share and see it go away with the server.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    server, base = serve_delivery(delivery_env(tmp_path, TMPDIR=str(tmp)), tmp_path, WORKERS)
    try:
        (directory,) = tmp.glob("audiocdn-delivery-metrics-*")
        sent = hit_every_worker(base, directory)
        text = scrape(f"{base}/metrics")
        assert total(text, REQUESTS, route="/healthz", status="200") == sent
        duration = "delivery_http_request_duration_seconds_count"
        assert total(text, duration, route="/healthz") == sent
        # A per-worker gauge is summed over the live workers: the scrape's own connection.
        assert total(text, "delivery_connections_open") >= 1
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log()
    assert not directory.exists()  # the private directory leaves with the server


def test_a_stale_directory_from_an_earlier_run_adds_nothing(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR set by the operator is used, emptied of an earlier run's
    files at start (they would add up), and kept."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    # What a killed earlier run leaves behind: a worker's counter file with 1000 requests.
    stale = MmapedDict(str(directory / "counter_4194000.db"))
    key = mmap_key(
        "delivery_http_requests",
        REQUESTS,
        ["method", "route", "status"],
        ["GET", "/healthz", "200"],
        "HTTP requests",
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    env = delivery_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))
    server, base = serve_delivery(env, tmp_path, WORKERS)
    try:
        assert not (directory / "counter_4194000.db").exists()
        sent = hit_every_worker(base, directory)
        assert total(scrape(f"{base}/metrics"), REQUESTS, route="/healthz") == sent
    finally:
        server.stop()
    assert directory.is_dir()  # the operator's directory stays
    # Workers that exit cleanly drop their live gauges (mark_process_dead).
    assert not list(directory.glob("gauge_live*")), os.listdir(directory)
