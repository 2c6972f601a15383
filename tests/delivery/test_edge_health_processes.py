"""Edge health shared by real ``delivery serve`` workers: one probe per edge and interval
for the whole deployment, and every worker routes around an edge that is down.

Three stand-in edges (HTTP servers counting ``/readyz`` probes, each switchable to 503)
and one ``delivery serve --workers 3`` on SQLite. Stream answers are requested on fresh
connections from several threads, so the kernel spreads them over the workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from origin.store import open_store
from tests.delivery.test_outbox_processes import delivery_env, publish_full
from tests.support.http_stub import QuietHandler, StubServer
from tests.support.servers import run_part_cli, serve_delivery
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

INTERVAL_S = 0.5
WORKERS = 3
TRACKS = 30


class FakeEdge:
    """An HTTP server answering ``/readyz`` with ``status`` and counting the probes."""

    def __init__(self) -> None:
        self.status = 200
        self.probes: list[float] = []
        edge = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                if self.path == "/readyz":
                    edge.probes.append(time.monotonic())
                self.send_response(edge.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = StubServer(Handler)
        self.url = self.server.url

    def probes_between(self, start: float, end: float) -> int:
        return sum(1 for t in list(self.probes) if start <= t < end)

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def edges() -> Iterator[list[FakeEdge]]:
    made = [FakeEdge() for _ in range(3)]
    yield made
    for edge in made:
        edge.close()


def test_workers_share_one_view_of_edge_health(tmp_path, edges):
    store_url = f"file://{tmp_path / 'origin'}"
    store = open_store(store_url)
    track_ids = [f"health-{n:02d}" for n in range(TRACKS)]
    for track_id in track_ids:
        publish_full(store, track_id, title=track_id)
    env = {
        **delivery_env(tmp_path, store_url, DELIVERY_EDGE_HEALTH_INTERVAL_S=str(INTERVAL_S)),
        "DELIVERY_EDGE_URLS": ",".join(e.url for e in edges),
    }
    server, base = serve_delivery(env, tmp_path, workers=WORKERS)
    try:
        done = run_part_cli("delivery", ["token", "--user", "u1"], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        headers = {"Authorization": f"Bearer {done.stdout.strip()}", "Connection": "close"}

        def edge_of(track_id: str) -> str:
            r = httpx.get(f"{base}/v1/tracks/{track_id}/stream", headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            url = r.json()["url"]
            return next(e.url for e in edges if url.startswith(e.url + "/"))

        def routing() -> list[str]:
            # Every track asked three times, concurrently: answers from every worker.
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(edge_of, track_ids * 3))
            return answers

        # All up: every track has one edge, whichever worker answers, and all three
        # edges get a share.
        before = routing()
        by_track = dict(zip(track_ids * 3, before, strict=True))
        assert all(by_track[t] == e for t, e in zip(track_ids * 3, before, strict=True))
        assert set(before) == {e.url for e in edges}

        # One probe per edge and interval for the whole deployment, not one per worker.
        window_start = time.monotonic()
        time.sleep(8 * INTERVAL_S)
        window_end = time.monotonic()
        for edge in edges:
            probes = edge.probes_between(window_start, window_end)
            assert 1 <= probes <= 8 + 2, (edge.url, probes)

        # One edge goes down: every worker stops routing to it within a few intervals,
        # and only its share of the tracks moves.
        down = edges[1]
        down.status = 503
        wait_for(
            lambda: down.url not in routing(),
            what="every worker routes around the down edge",
            timeout=10 * INTERVAL_S + 5,
        )
        after = dict(zip(track_ids * 3, routing(), strict=True))
        assert down.url not in after.values()
        for track_id in track_ids:
            if by_track[track_id] != down.url:
                assert after[track_id] == by_track[track_id], track_id

        # Back up: its share returns to it.
        down.status = 200
        wait_for(
            lambda: down.url in routing(),
            what="the edge back in rotation",
            timeout=10 * INTERVAL_S + 5,
        )
        assert dict(zip(track_ids * 3, routing(), strict=True)) == by_track
    finally:
        server.stop()
