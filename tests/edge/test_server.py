"""The edge's protocol (edge.server): memory hits answered below ASGI, everything else
handed on, over real loopback sockets to uvicorn in this process.

Every async test of the other in-process modules also runs ``[socket]`` (see
conftest); here: that hits really take the hot path, that it answers exactly as the
ASGI app does, and what it must leave to the app (tokens not remembered, refusals,
proxies' client addresses), pipelining order, flow control and keep-alive bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from common.limits import ConnectionLimits
from edge.app import EdgeApp
from edge.server import EdgeProtocol, find_edge_app, serve_options
from tests.edge.conftest import KEY, PULL_TOKEN, access_lines, put_random, serving
from tests.support.fake_transport import FakeTransport

pytestmark = pytest.mark.anyio
OTHER = "tracks/t2/0123456789abcdef/96.ogg"


@pytest.fixture
def data(store) -> bytes:
    put_random(store, OTHER, 5000)
    return put_random(store, KEY, 100_000)


def count_hot(app: EdgeApp) -> list[int]:
    """Statuses answered by the hot path (a spy around EdgeApp.hot_hit)."""
    answered: list[int] = []
    real = app.hot_hit

    def spy(*args):
        answer = real(*args)
        if answer is not None:
            answered.append(answer[0])
        return answer

    app.hot_hit = spy  # type: ignore[method-assign]
    return answered


async def test_a_remembered_token_on_a_memory_hit_is_answered_below_asgi(
    store_edge, data, url, tmp_path
):
    app = store_edge()
    hot = count_hot(app)
    target = url()
    async with serving(app, "socket") as client:
        miss = await client.get(target)  # fill; the token is verified and remembered
        ranged = await client.get(target, headers={"range": "bytes=10-19"})
        head = await client.head(target)
        whole = await client.get(target)
    assert miss.headers["x-cache"] == "MISS" and miss.content == data
    assert hot == [206, 200, 200]
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert ranged.headers["content-range"] == "bytes 10-19/100000"
    assert head.content == b"" and head.headers["content-length"] == "100000"
    assert whole.content == data and whole.headers["x-cache"] == "HIT"
    lines = access_lines(tmp_path)
    assert [(x["status"], x["cache"], x["bytes"]) for x in lines] == [
        (200, "MISS", 100_000), (206, "HIT", 10), (200, "HIT", 0), (200, "HIT", 100_000),
    ]  # fmt: skip
    assert lines[1]["range"] == "bytes=10-19" and lines[2]["method"] == "HEAD"
    assert len({x["request_id"] for x in lines}) == 4 and lines[1]["ip"] == "127.0.0.1"
    assert app.stats.hits_memory == 3 and app.stats.responses == {200: 3, 206: 1}


REQUESTS = [
    ("GET", {}),
    ("GET", {"range": "bytes=0-0"}),
    ("GET", {"range": "bytes=99990-"}),
    ("GET", {"range": "bytes=-7"}),
    ("GET", {"range": "bytes=0-1,5-6"}),  # several ranges: the whole object
    ("GET", {"range": "items=0-1"}),
    ("HEAD", {"range": "bytes=5-9"}),
    ("GET", {"range": "bytes=0-9", "if-range": "ETAG"}),
    ("GET", {"range": "bytes=0-9", "if-range": '"old"'}),
    ("GET", {"if-none-match": '"old"'}),
    ("GET", {"if-none-match": "ETAG"}),  # 304: the app answers
    ("GET", {"range": "bytes=100000-"}),  # 416: the app answers
    ("GET", {"if-match": '"old"'}),  # 412: the app answers
    ("GET", {"x-request-id": "listener-7"}),
]


async def test_hot_answers_are_the_asgi_answers(store_edge, data, url):
    async def answers(way: str) -> list[tuple]:
        app = store_edge()
        target = url()
        out = []
        async with serving(app, way) as client:
            etag = (await client.get(target)).headers["etag"]
            for method, headers in REQUESTS:
                headers = {k: v.replace("ETAG", etag) for k, v in headers.items()}
                r = await client.request(method, target, headers=headers)
                shown = {
                    k: v
                    for k, v in r.headers.items()
                    if k not in ("date", "cache-control", "connection")
                }
                out.append((r.status_code, shown, r.content, r.headers.get("cache-control")))
        return out

    via_asgi = await answers("asgi")
    via_socket = await answers("socket")
    for (method, headers), a, s in zip(REQUESTS, via_asgi, via_socket, strict=True):
        assert a[:3] == s[:3], (method, headers)
        assert a[3].split("=")[0] == s[3].split("=")[0]  # max-age counts down meanwhile


async def test_what_the_hot_path_leaves_to_the_app(store_edge, data, sign, tmp_path):
    app = store_edge()
    hot = count_hot(app)
    fresh = f"/{KEY}?token={sign('/' + KEY)}"
    async with serving(app, "socket") as client:
        assert (await client.get(fresh)).status_code == 200  # verified, remembered, cached
        await client.get(f"/{OTHER}?token={sign('/' + OTHER)}")
        # A token remembered for one path does not open another (also in memory).
        other = await client.get(f"/{OTHER}?" + fresh.split("?")[1])
        # A token never verified goes to the app, which verifies it.
        new = await client.get(f"/{KEY}?token={sign('/' + KEY, ttl=120)}")
        forged = await client.get(fresh[:-4] + "AAAA")
        missing = await client.get(f"/{KEY}")
        # The pull token is checked on the hot path too: a wrong one goes to the app.
        pulled = await client.get(f"/{KEY}", headers={"authorization": f"Bearer {PULL_TOKEN}"})
        bad_pull = await client.get(f"/{KEY}", headers={"authorization": "Bearer nope"})
        posted = await client.post(fresh, content=b"x")
        with_body = await client.request("GET", fresh, content=b"x" * 10)
        http10 = await raw(client, b"GET %s HTTP/1.0\r\n\r\n" % fresh.encode())
    assert other.status_code == 403 and other.json()["error"]["code"] == "token_path_mismatch"
    assert new.status_code == 200 and new.headers["x-cache"] == "HIT"
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] in ("token_bad_signature", "token_malformed")
    assert missing.json()["error"]["code"] == "token_missing"
    assert pulled.status_code == 200 and pulled.headers["cache-control"].startswith("public")
    assert pulled.headers["x-checksum-sha256"]
    assert bad_pull.json()["error"]["code"] == "pull_token_invalid"
    assert posted.status_code == 405 and with_body.status_code == 200
    assert http10.startswith(b"HTTP/1.1 200 ") and b"connection: close" in http10.lower()
    assert hot == [200]  # the pull-token request only
    codes = [x.get("error") for x in access_lines(tmp_path)]
    assert "token_path_mismatch" in codes and "pull_token_invalid" in codes


async def raw(client: httpx.AsyncClient, request: bytes, until_closed: bool = True) -> bytes:
    """Send ``request`` bytes on a new connection to the client's server; what comes back."""
    host, port = client.base_url.host, client.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        if until_closed:
            return await asyncio.wait_for(reader.read(), 10)
        await asyncio.sleep(0.5)
        return await asyncio.wait_for(reader.read(1 << 22), 10)
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order(store_edge, data, url, sign):
    app = store_edge()
    hot = count_hot(app)
    target = url().encode()
    cold = f"/{OTHER}?token={sign('/' + OTHER)}".encode()
    async with serving(app, "socket") as client:
        await client.get(target.decode())
        # hit, miss (a fill through the app), hit, metrics, hit: one write, one read.
        requests = [
            b"GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n" % target,
            b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % cold,
            b"GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=4-7\r\n\r\n" % target,
            b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target,
        ]
        got = await raw(client, b"".join(requests))
    statuses = [int(part[:3]) for part in got.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [206, 200, 206, 200, 200]
    assert data[:4] in got and data[4:8] in got
    assert got.index(data[:4]) < got.index(b"x-cache: MISS") < got.index(data[4:8])
    # Only the first hit was hot: the others waited behind the app's answer.
    assert hot == [206]


async def test_proxied_client_addresses_go_to_the_app(make_settings, store, data, sign):
    app = EdgeApp(make_settings(upstream=store.url, forwarded_allow_ips="127.0.0.1"))
    hot = count_hot(app)
    bound = f"/{KEY}?token={sign('/' + KEY, ip='127.0.0.1')}"
    async with serving(app, "socket") as client:
        assert (await client.get(bound)).status_code == 200
        assert (await client.get(bound)).status_code == 200
        # The socket peer is 127.0.0.1, but the trusted proxy says the client is another.
        forwarded = await client.get(bound, headers={"x-forwarded-for": "10.1.2.3"})
    assert hot == [200]
    assert forwarded.status_code == 403
    assert forwarded.json()["error"]["code"] == "token_ip_mismatch"


def test_serve_options_are_edge_serves(make_settings):
    settings = make_settings(forwarded_allow_ips=" 10.0.0.1 ", max_header_bytes=4096)
    options = serve_options(settings)
    assert options["http"].func is EdgeProtocol
    assert options["http"].keywords["limits"].max_header_bytes == 4096
    assert options["proxy_headers"] and options["forwarded_allow_ips"] == "10.0.0.1"
    assert options["access_log"] is False and options["server_header"] is False
    assert serve_options(make_settings())["proxy_headers"] is False


def test_find_edge_app_looks_under_middleware(make_settings):
    app = EdgeApp(make_settings())

    class Wrapper:
        def __init__(self, inner) -> None:
            self.app = inner

    assert find_edge_app(Wrapper(Wrapper(app))) is app
    assert find_edge_app(object()) is None


# -- the protocol on a fake transport (no socket, no timing) ---------------------------


def protocol_for(app: EdgeApp, **limits) -> tuple[EdgeProtocol, FakeTransport]:
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    config.load()
    bounds = ConnectionLimits("edge", **{"idle_timeout_s": 1, **limits})
    protocol = EdgeProtocol(config, ServerState(), {}, asyncio.get_running_loop(), limits=bounds)
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


@contextlib.asynccontextmanager
async def warmed(app: EdgeApp, target: str) -> AsyncIterator[None]:
    """``app`` running, ``target``'s object in its memory tier and its token remembered."""
    async with app.running():
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            assert (await client.get(target)).status_code == 200
        yield


async def test_keep_alive_after_a_hot_answer_is_bounded_by_the_sweep(store_edge, data, url):
    app = store_edge()
    target = url()
    async with warmed(app, target):
        protocol, transport = protocol_for(app, idle_timeout_s=2)
        protocol.data_received(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 ")
        answered = protocol._idle_since
        assert answered and protocol.timeout_keep_alive_task is None  # no timer per request
        protocol.check_deadlines(answered + 1.5)
        assert not transport.closed
        protocol.check_deadlines(answered + 2.0)
        assert transport.closed and protocol.stats.closed["idle_timeout"] >= 1
        protocol.connection_lost(None)
        # A request that has started arriving is timed as a head, not as idle.
        protocol, transport = protocol_for(app, idle_timeout_s=2, header_timeout_s=5)
        protocol.data_received(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        protocol.data_received(b"GET / HT")
        protocol.check_deadlines(protocol.loop.time() + 3)
        assert not transport.closed
        protocol.connection_lost(None)


async def test_write_backpressure_hands_requests_to_uvicorns_flow_control(store_edge, data, url):
    app = store_edge()
    target = url()
    hot = count_hot(app)
    async with warmed(app, target):
        protocol, transport = protocol_for(app)
        request = b"GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n" % target.encode()
        protocol.data_received(request)
        protocol.pause_writing()  # the client stopped reading
        protocol.data_received(request)
        assert hot == [206] and protocol.cycle is not None  # the second went to the app
        protocol.resume_writing()
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(transport.writes) >= 2 and transport.writes[-1].endswith(data[:10])
        protocol.connection_lost(None)


async def test_shutdown_closes_a_connection_idle_after_a_hot_answer(store_edge, data, url):
    app = store_edge()
    target = url()
    async with warmed(app, target):
        protocol, transport = protocol_for(app)
        protocol.data_received(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        protocol.shutdown()  # what uvicorn calls on every connection at a graceful stop
        assert transport.closed
        protocol.connection_lost(None)


async def test_oversized_heads_are_still_refused(store_edge, data, url):
    app = store_edge()
    target = url()
    async with warmed(app, target):
        protocol, transport = protocol_for(app, max_header_bytes=1024)
        protocol.data_received(
            b"GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % (target.encode(), b"a" * 2000)
        )
        assert transport.closed and transport.writes[0].startswith(b"HTTP/1.1 431 ")
        protocol.connection_lost(None)


async def test_a_failing_hot_path_leaves_the_answer_to_the_app(store_edge, data, url, caplog):
    app = store_edge()
    target = url()

    def broken(*args):
        raise RuntimeError("a bug")

    async with serving(app, "socket") as client:
        await client.get(target)
        app.hot_hit = broken  # type: ignore[method-assign]
        r = await client.get(target, headers={"range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == data[:10] and r.headers["x-cache"] == "HIT"
    assert "hot path failed" in caplog.text


def test_a_worker_process_keeps_uvicorns_access_log_off(monkeypatch, keypair, tmp_path):
    # A worker of `edge serve --workers 2` configures logging itself, after uvicorn switched
    # its access log off; uvicorn's line would carry the query string, the token with it.
    import logging

    from edge.app import create_app_from_env

    monkeypatch.setenv("EDGE_TOKEN_PUBLIC_KEYS", str(keypair[1]))
    monkeypatch.setenv("EDGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGE_PULL_TOKEN", PULL_TOKEN)
    monkeypatch.setenv("EDGE_DEV_MODE", "false")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.handlers[:], access.propagate
    root.handlers[:] = []  # as in a freshly spawned worker
    try:
        create_app_from_env()
        assert root.handlers  # the edge's JSON logging is installed...
        assert access.handlers == [] and access.propagate is False  # ...without uvicorn's line
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        access.handlers[:], access.propagate = saved_access
