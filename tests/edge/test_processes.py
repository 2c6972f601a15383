"""Real processes: ``origin serve`` and ``edge serve`` over real sockets, faults from a TCP proxy.

Covers what only separate processes can show: faults on a real network path,
several edge worker processes sharing one disk cache (one upstream fetch, no
corrupt read), a restart keeping the cache, and ffmpeg seeking in a real Ogg
file through the edge.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from edge.token import sign_stream_token
from origin.local import LocalStore
from tests.edge.conftest import KEY, PULL_TOKEN
from tests.edge.proxy import FaultProxy, NetFault
from tests.support.servers import VENV_BIN, ServerProcess, free_port, on_free_port
from tests.support.waiting import wait_for, wait_for_async

pytestmark = pytest.mark.slow  # real origin/edge processes, faults over real sockets

SIZE = 3_000_000


@pytest.fixture
def objects(store: LocalStore) -> dict[str, bytes]:
    data = os.urandom(SIZE)
    store.put_bytes(KEY, data)
    return {KEY: data}


@pytest.fixture
def origin(store, objects):
    def start(port: int) -> ServerProcess:
        proc = ServerProcess(
            "origin",
            [str(VENV_BIN / "origin"), "serve", "--port", str(port)],
            env={
                "ORIGIN_STORE": store.url,
                "ORIGIN_HOST": "127.0.0.1",
                "ORIGIN_PORT": str(port),
                "ORIGIN_PULL_TOKEN": PULL_TOKEN,
                "ORIGIN_LOG_LEVEL": "warning",
            },
        )
        proc.wait_http(f"http://127.0.0.1:{port}/healthz")
        proc.port = port  # type: ignore[attr-defined]
        return proc

    with on_free_port(start) as proc:
        yield proc


@pytest.fixture
def proxy(origin):
    p = FaultProxy(origin.port).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def start_edge(tmp_path, keypair) -> Callable[..., tuple[ServerProcess, str]]:
    started: list[ServerProcess] = []

    def start(
        upstream: str, *, workers: int = 1, cache: str = "cache", **env
    ) -> tuple[ServerProcess, str]:
        return on_free_port(lambda port: start_on(port, upstream, workers, cache, env))

    def start_on(
        port: int, upstream: str, workers: int, cache: str, env: dict
    ) -> tuple[ServerProcess, str]:
        full_env = {
            "EDGE_UPSTREAM": upstream,
            "EDGE_PULL_TOKEN": PULL_TOKEN,
            "EDGE_TOKEN_PUBLIC_KEYS": str(keypair[1]),
            "EDGE_CACHE_DIR": str(tmp_path / cache),
            "EDGE_ACCESS_LOG": str(tmp_path / f"access-{port}.log"),
            "EDGE_UPSTREAM_BACKOFF_S": "0.05",
            "EDGE_DEV_MODE": "false",
            "EDGE_LOG_LEVEL": "warning",
            **{k: str(v) for k, v in env.items()},
        }
        proc = ServerProcess(
            "edge",
            [str(VENV_BIN / "edge"), "serve", "--port", str(port), "--workers", str(workers)],
            env=full_env,
        )
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        proc.wait_http(f"{base}/livez")
        return proc, base

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def link(ed_key) -> Callable[[str, str], str]:
    def build(base: str, key: str = KEY) -> str:
        token = sign_stream_token("/" + key, key=ed_key, ttl_s=600, sub="proc-test")
        return f"{base}/{key}?token={token}"

    return build


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_real_origin_end_to_end(start_edge, proxy, link, objects):
    data = objects[KEY]
    _, base = start_edge(proxy.url)
    url = link(base)
    with httpx.Client(timeout=30) as c:
        first = c.get(url)
        tail = c.get(url, headers={"range": "bytes=-65536"})
        mid = c.get(url, headers={"range": "bytes=1000000-"})
        head = c.head(url)
        cond = c.get(url, headers={"if-none-match": first.headers["etag"]})
        health = c.get(f"{base}/readyz")
    assert first.status_code == 200 and first.content == data
    assert first.headers["x-cache"] == "MISS"
    assert tail.status_code == 206 and tail.content == data[-65536:]
    assert mid.status_code == 206 and mid.content == data[1_000_000:]
    assert head.status_code == 200 and head.headers["content-length"] == str(SIZE)
    assert cond.status_code == 304
    assert health.status_code == 200 and health.json()["ready"] is True
    assert len(proxy.object_requests()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_real_5xx_retried_then_served(start_edge, proxy, link, objects, status):
    proxy.faults = [NetFault(status=status), NetFault(status=status)]
    _, base = start_edge(proxy.url, EDGE_UPSTREAM_RETRIES=2)
    r = httpx.get(link(base), timeout=30)
    assert r.status_code == 200 and r.content == objects[KEY]
    assert len(proxy.object_requests()) == 3


def test_real_5xx_exhausting_retries_is_a_502(start_edge, proxy, link, tmp_path):
    proxy.faults = [NetFault(status=500)] * 3
    _, base = start_edge(proxy.url, EDGE_UPSTREAM_RETRIES=2)
    r = httpx.get(link(base), timeout=30)
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))


def test_real_timeout_is_retried(start_edge, proxy, link, objects):
    proxy.faults = [NetFault(blackhole=True)]
    _, base = start_edge(proxy.url, EDGE_UPSTREAM_READ_TIMEOUT_S="0.5", EDGE_UPSTREAM_RETRIES=1)
    r = httpx.get(link(base), timeout=30)
    assert r.status_code == 200 and r.content == objects[KEY]
    assert len(proxy.object_requests()) == 2


def test_dead_shield_fails_over_to_the_live_one(start_edge, link, objects, origin):
    dead = f"http://127.0.0.1:{free_port()}"
    _, base = start_edge(f"{dead},http://127.0.0.1:{origin.port}", EDGE_UPSTREAM_RETRIES=1)
    # Whatever the object's home shield, the dead one is skipped and the origin serves it.
    r = httpx.get(link(base), timeout=30)
    assert r.status_code == 200 and r.content == objects[KEY]


def test_real_origin_down_is_a_502_and_readyz_says_degraded(start_edge, link):
    dead = f"http://127.0.0.1:{free_port()}"
    _, base = start_edge(dead, EDGE_UPSTREAM_RETRIES=1)
    r = httpx.get(link(base), timeout=30)
    ready = httpx.get(f"{base}/readyz", timeout=30)
    health = httpx.get(f"{base}/healthz", timeout=30)
    assert r.status_code == 502
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert health.status_code == 200


@pytest.mark.parametrize("fault", ["reset_after", "close_after"])
def test_real_broken_body_is_resumed(start_edge, proxy, link, objects, fault):
    proxy.faults = [NetFault(**{fault: 1_000_000})]
    _, base = start_edge(proxy.url)
    r = httpx.get(link(base), timeout=30)
    assert r.status_code == 200 and sha(r.content) == sha(objects[KEY])
    assert len(proxy.object_requests()) == 2  # the fetch and one ranged resume


@pytest.mark.parametrize("fault", ["reset_after", "close_after", "corrupt_at"])
def test_real_failed_fill_truncates_the_client_and_caches_nothing(
    start_edge, proxy, link, tmp_path, fault
):
    proxy.faults = [NetFault(**{fault: 500_000})] * 5
    _, base = start_edge(proxy.url, EDGE_UPSTREAM_RETRIES=2)
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", link(base), timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-length"] == str(SIZE)
        for chunk in r.iter_raw():
            received.extend(chunk)
    # The client was told the body is incomplete: fewer bytes than Content-Length.
    assert len(received) < SIZE
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))
    assert not list((tmp_path / "cache" / "parts").iterdir())


def test_two_edge_processes_share_one_cache_and_one_fetch(start_edge, proxy, link, objects):
    data = objects[KEY]
    proxy.faults = [NetFault(gate_after=1_000_000)]
    _, a = start_edge(proxy.url)
    _, b = start_edge(proxy.url)
    results: dict[str, tuple] = {}

    def fetch(name: str, url: str, got_headers: threading.Event) -> None:
        with httpx.stream("GET", url, timeout=60) as r:
            got_headers.set()
            body = b"".join(r.iter_raw())
        results[name] = (r.status_code, r.headers["x-cache"], sha(body), len(body))

    threads = []
    for name, base in (("a", a), ("b1", b), ("b2", b)):
        ready = threading.Event()
        t = threading.Thread(target=fetch, args=(name, link(base), ready))
        t.start()
        threads.append(t)
        # Response headers can only arrive once the one fill is under way (its part file
        # exists) and the upstream is still gated: each later client must coalesce.
        assert ready.wait(30)
    proxy.gate.set()
    for t in threads:
        t.join(60)
    assert len(proxy.object_requests()) == 1
    assert results["a"] == (200, "MISS", sha(data), SIZE)
    assert results["b1"] == (200, "COALESCED", sha(data), SIZE)
    assert results["b2"] == (200, "COALESCED", sha(data), SIZE)
    hit = httpx.get(link(b), timeout=30)
    assert hit.headers["x-cache"] == "HIT" and hit.content == data
    assert len(proxy.object_requests()) == 1


def test_uvicorn_workers_share_the_cache_under_concurrency(start_edge, proxy, link, objects):
    data = objects[KEY]
    proxy.faults = [NetFault(gate_after=200_000)]
    _, base = start_edge(proxy.url, workers=2)
    url = link(base)
    digests: list[str] = []
    lock = threading.Lock()

    def fetch() -> None:
        r = httpx.get(url, timeout=60)
        with lock:
            digests.append(f"{r.status_code}:{sha(r.content)}")

    threads = [threading.Thread(target=fetch) for _ in range(40)]
    for t in threads:
        t.start()
    wait_for(lambda: proxy.object_requests(), what="the upstream fetch to reach the proxy")
    proxy.gate.set()
    for t in threads:
        t.join(60)
    assert digests == [f"200:{sha(data)}"] * 40
    assert len(proxy.object_requests()) == 1


def test_restart_keeps_the_disk_cache(start_edge, proxy, link, objects):
    data = objects[KEY]
    first, base = start_edge(proxy.url)
    assert httpx.get(link(base), timeout=30).content == data
    first.stop()
    dead = f"http://127.0.0.1:{free_port()}"
    _, base = start_edge(dead)  # no upstream at all: only the cache can answer
    r = httpx.get(link(base), timeout=30)
    ranged = httpx.get(link(base), headers={"range": "bytes=10-19"}, timeout=30)
    assert r.status_code == 200 and r.headers["x-cache"] == "HIT" and r.content == data
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert len(proxy.object_requests()) == 1


def test_ffmpeg_seeks_a_real_ogg_through_the_edge(start_edge, store, link, tmp_path, origin):
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    ogg = tmp_path / "tone.ogg"
    subprocess.run(
        [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
         "-c:a", "libvorbis", "-b:a", "96k", str(ogg)],
        check=True,
    )  # fmt: skip
    key = "tracks/tone/0123456789abcdef/96.ogg"
    store.put_file(key, ogg)
    _, base = start_edge(f"http://127.0.0.1:{origin.port}")
    url = link(base, key)
    out = tmp_path / "copy.ogg"
    # -ss makes ffmpeg seek inside the Ogg over HTTP (bisection with open-ended ranges).
    subprocess.run(
        [ffmpeg, "-v", "error", "-ss", "2", "-i", url, "-c", "copy", "-y", str(out)],
        check=True,
        timeout=60,
    )
    assert out.stat().st_size > 0
    r = httpx.get(url, timeout=30)
    assert r.content == ogg.read_bytes()

    def statuses() -> list[int]:
        logs = [
            json.loads(x)
            for p in tmp_path.glob("access-*.log")
            for x in Path(p).read_text().splitlines()
        ]
        return [x["status"] for x in logs if x["path"] == "/" + key]

    # The access log is flushed every 250 ms.
    wait_for(lambda: 200 in statuses(), what="the 200 in the edge's access log", detail=statuses)
    assert 206 in statuses() and all(s in (200, 206) for s in statuses())


def test_200_concurrent_clients_over_real_sockets_make_one_origin_fetch(
    start_edge, proxy, link, objects
):
    import asyncio

    data = objects[KEY]
    proxy.faults = [NetFault(gate_after=500_000)]  # hold the fill until everyone is in
    _, base = start_edge(proxy.url)
    url = link(base)

    async def run() -> list[tuple[int, str, str]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def one() -> tuple[int, str, str]:
                async with client.stream("GET", url) as r:
                    body = b"".join([chunk async for chunk in r.aiter_raw()])
                return r.status_code, r.headers["x-cache"], sha(body)

            tasks = [asyncio.create_task(one()) for _ in range(200)]
            async with httpx.AsyncClient(timeout=10) as side:  # the pool above is all busy
                metrics = ""

                async def all_joined() -> bool:
                    nonlocal metrics
                    metrics = (await side.get(f"{base}/metrics")).text
                    return 'result="coalesced"} 199.0' in metrics

                await wait_for_async(
                    all_joined,
                    what="all 200 clients to join the one fill",
                    timeout=60,
                    detail=lambda: [x for x in metrics.splitlines() if "cache_requests" in x],
                )
            proxy.gate.set()
            return await asyncio.gather(*tasks)

    results = asyncio.run(run())
    assert len(proxy.object_requests()) == 1
    assert {r[2] for r in results} == {sha(data)} and {r[0] for r in results} == {200}
    assert sorted(r[1] for r in results).count("MISS") == 1


def test_tiered_caching_children_pull_from_a_shield_edge(start_edge, proxy, link, objects):
    """edges -> shield edge -> origin: each child pulls with the pull token; the shield
    fetches from the origin once and hands the sha256 down so children verify too."""
    data = objects[KEY]
    _, shield = start_edge(proxy.url)
    _, child_a = start_edge(shield, cache="cache-a")
    _, child_b = start_edge(shield, cache="cache-b")
    first = httpx.get(link(child_a), timeout=30)
    second = httpx.get(link(child_b), headers={"range": "bytes=-1000"}, timeout=30)
    direct = httpx.get(f"{shield}/{KEY}", headers={"authorization": f"Bearer {PULL_TOKEN}"})
    assert first.status_code == 200 and first.content == data
    assert second.status_code == 206 and second.content == data[-1000:]
    assert direct.headers["x-checksum-sha256"] == sha(data)
    assert len(proxy.object_requests()) == 1
