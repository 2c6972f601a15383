"""One scrape of ``/metrics`` reports every worker of ``edge serve --workers N``.

Real processes. The workers' hot-path counters are plain ints flushed into
prometheus-client's multiprocess files (at most a second late, see
:mod:`common.metrics`), so the test polls the scrape until it shows every
request: one scrape, answered by one worker, counts what all of them served. The
disk tier is shared state: after a restart every worker's scan finds the same
entry, and the gauge must say 1, not the sum of the workers' views. A second run
on the first run's metric files must not count the first run's requests.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx
import pytest

from edge.cache.entry import HEADER_SIZE
from edge.token import sign_stream_token
from tests.edge.conftest import KEY, PULL_TOKEN, put_random
from tests.support.prometheus import per_worker, scrape, total
from tests.support.servers import ServerProcess, part_env, serve_edge
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # real multi-worker edges

WORKERS = 2
SIZE = 20_000
RESPONSES = "edge_responses_total"


def start_edge(tmp_path: Path, store, keypair, **extra: str) -> tuple[ServerProcess, str]:
    env = part_env(
        "EDGE_",
        EDGE_UPSTREAM=store.url,
        EDGE_PULL_TOKEN=PULL_TOKEN,
        EDGE_TOKEN_PUBLIC_KEYS=str(keypair[1]),
        EDGE_CACHE_DIR=str(tmp_path / "cache"),
        EDGE_ACCESS_LOG="off",
        EDGE_DEV_MODE="false",
        EDGE_LOG_LEVEL="info",
    )
    env.update(extra)
    return serve_edge(env, workers=WORKERS)


def hit_every_worker(url: str, directory: Path) -> int:
    """GETs on fresh connections until every worker served some; how many were sent."""
    sent = 0
    lock = threading.Lock()

    def batch() -> None:
        nonlocal sent
        for _ in range(10):
            answer = httpx.get(url, headers={"Connection": "close"}, timeout=10)
            assert answer.status_code == 200 and len(answer.content) == SIZE
            with lock:
                sent += 1

    def every_worker_served() -> bool:
        threads = [threading.Thread(target=batch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each worker flushes its counts into its own file within a second.
        try:
            wait_for(
                lambda: len(per_worker(directory, RESPONSES, status="200")) == WORKERS,
                what="both workers' counts",
                timeout=2.5,
            )
        except AssertionError:
            return False
        return True

    wait_for(
        every_worker_served,
        what=f"requests served by all {WORKERS} workers",
        timeout=60,
        detail=lambda: per_worker(directory, RESPONSES, status="200"),
    )
    return sent


def scraped_total(base: str, sent: int) -> str:
    """The first scrape counting all ``sent`` responses (flushes lag by up to a second)."""
    texts: list[str] = []

    def counted() -> bool:
        texts.append(scrape(f"{base}/metrics"))
        return total(texts[-1], RESPONSES, status="200") == sent

    wait_for(
        counted,
        what=f"{sent} responses in one scrape",
        timeout=10,
        detail=lambda: total(texts[-1], RESPONSES) if texts else None,
    )
    return texts[-1]


def test_one_scrape_counts_every_worker_and_a_restart_starts_afresh(
    tmp_path, store, keypair, ed_key
):
    put_random(store, KEY, SIZE)
    token = sign_stream_token("/" + KEY, key=ed_key, ttl_s=600, sub="metrics-test")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    earlier = tmp_path / "earlier-run"

    # Run 1: the server's private directory (under its TMPDIR).
    proc, base = start_edge(tmp_path, store, keypair, TMPDIR=str(tmp))
    try:
        (directory,) = tmp.glob("audiocdn-edge-metrics-*")
        sent = hit_every_worker(f"{base}/{KEY}?token={token}", directory)
        text = scraped_total(base, sent)
        assert total(text, "edge_bytes_sent_total") == sent * SIZE
        assert total(text, "edge_cache_requests_total") == sent
        assert total(text, "edge_origin_fetches_total") == 1  # one fill for all workers
        shutil.copytree(directory, earlier)  # what a crashed run would leave behind
    finally:
        proc.stop()
    assert not directory.exists()

    # Run 2: the operator's directory, holding run 1's files; the cache kept its entry.
    proc, base = start_edge(tmp_path, store, keypair, PROMETHEUS_MULTIPROC_DIR=str(earlier))
    try:
        sent = hit_every_worker(f"{base}/{KEY}?token={token}", earlier)
        text = scraped_total(base, sent)  # run 1's requests were wiped at start
        assert total(text, "edge_bytes_sent_total") == sent * SIZE
        assert total(text, "edge_origin_fetches_total") == 0  # served from the disk tier
        # Every worker scanned the shared disk tier at start: one entry, not one per worker.
        assert total(text, "edge_cache_disk_objects") == 1
        assert total(text, "edge_cache_disk_bytes") == HEADER_SIZE + SIZE
    finally:
        proc.stop()
    assert earlier.is_dir() and not list(earlier.glob("gauge_live*"))
