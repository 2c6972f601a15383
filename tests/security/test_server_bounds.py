"""Every server bounded like nginx (issue 11): real ``origin``, ``edge`` and ``delivery``
processes attacked over raw sockets.

* header bomb: 10 connections each pushing 20 MB of one unfinished header -> 431 and
  closed, the server's RSS barely moves;
* slow headers: one byte every 200 ms -> 408 and closed within the header timeout;
* idle flood: connections that never send a byte -> closed after the idle timeout,
  those past the connection limit answered 503 at once;
* body bombs: 90 MB (declared or chunked) to delivery before any authentication ->
  413 at the limit; a body on an origin/edge GET is not read past 64 KiB.

Limits are small here (1 s timeouts, 100 connections) to keep the file quick. Run
with ``-s`` to print what each attack cost each server (RSS growth, close times).
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.connections import ConnectionCollector
from common.limits import ConnectionLimits
from common.serving import BodyLimit, error_response
from common.signing_keys import ensure_dev_keypair
from tests.support.fake_transport import FakeTransport
from tests.support.servers import VENV_BIN, ServerProcess, on_free_port, part_env

ROOT = Path(__file__).resolve().parents[2]
PULL_TOKEN = "bounds-test-pull-token-0123456789"
HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 100
MAX_BODY = 1 << 20
SLACK_S = 3.0  # sweep interval, scheduling, a loaded CI machine
RSS_BOUND_KB = 30 * 1024
MB = 1 << 20
PARTS = ("origin", "edge", "delivery")


def limits_env(prefix: str) -> dict[str, str]:
    return {
        f"{prefix}_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        f"{prefix}_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        f"{prefix}_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        f"{prefix}_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        f"{prefix}_LOG_LEVEL": "warning",
    }


class Server:
    def __init__(self, part: str, proc: ServerProcess, port: int, health: str) -> None:
        self.part, self.proc, self.port, self.health = part, proc, port, health
        self.base = f"http://127.0.0.1:{port}"

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def metric(self, sample: str) -> float:
        """One sample of ``/metrics``, e.g. ``edge_connections_rejected_total``."""
        text = httpx.get(f"{self.base}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        raise AssertionError(f"{sample} not in /metrics")


def start(part: str, tmp: Path) -> Server:
    return on_free_port(lambda port: _start(part, tmp, port))


def _start(part: str, tmp: Path, port: int) -> Server:
    store = tmp / "store"
    store.mkdir(parents=True, exist_ok=True)
    if part == "origin":
        env = {
            "ORIGIN_STORE": store.as_uri(),
            "ORIGIN_PORT": str(port),
            "ORIGIN_PULL_TOKEN": PULL_TOKEN,
            **limits_env("ORIGIN"),
        }
        argv, health = [str(VENV_BIN / "origin"), "serve"], "/healthz"
    elif part == "edge":
        _, public = ensure_dev_keypair(tmp / "keys")
        env = {
            "EDGE_PORT": str(port),
            "EDGE_UPSTREAM": "http://127.0.0.1:9",  # never reached: no object is asked for
            "EDGE_PULL_TOKEN": PULL_TOKEN,
            "EDGE_TOKEN_PUBLIC_KEYS": str(public),
            "EDGE_CACHE_DIR": str(tmp / "edge-cache"),
            "EDGE_ACCESS_LOG": "off",
            "EDGE_DEV_MODE": "false",
            **limits_env("EDGE"),
        }
        argv, health = [str(VENV_BIN / "edge"), "serve"], "/livez"
    else:
        env = part_env(
            "DELIVERY_",
            DELIVERY_STORE=store.as_uri(),
            DELIVERY_DATA_DIR=str(tmp / "data"),
            DELIVERY_DATABASE_URL=f"sqlite:///{tmp / 'delivery.db'}",
            DELIVERY_PORT=str(port),
            DELIVERY_DEV_MODE="true",  # generated secrets, and /v1/dev/token to attack
            DELIVERY_ACCESS_LOG="false",
            DELIVERY_MAX_BODY_BYTES=str(MAX_BODY),
            **limits_env("DELIVERY"),
        )
        argv, health = [sys.executable, "-m", "delivery", "serve"], "/healthz"
    proc = ServerProcess(part, argv, env=env, cwd=tmp)
    try:
        proc.wait_http(f"http://127.0.0.1:{port}{health}", timeout=60)
    except BaseException:
        proc.stop()
        raise
    return Server(part, proc, port, health)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for part in PARTS:
            started[part] = start(part, tmp_path_factory.mktemp(part))
        yield started
    finally:
        for server in started.values():
            server.proc.stop()


# -- raw-socket helpers ----------------------------------------------------------------


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or ``timeout``), and when it closed."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data, time.monotonic()
        if not chunk:
            return data, time.monotonic()
        data += chunk
    raise AssertionError(f"still open after {timeout} s; received {data[:200]!r}")


def push(sock: socket.socket, total: int, chunk: bytes) -> int:
    """Send up to ``total`` bytes; stop at the first sign the server gave up. Bytes sent."""
    sent = 0
    sock.settimeout(5)
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # an answer (or a close): the server stopped reading
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset, broken pipe, or a full window the server stopped draining
        pass
    return sent


def status_of(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])


def json_error(response: bytes) -> dict:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])["error"]


def report(part: str, attack: str, **figures: object) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[bounds] {part:8} {attack:14} {shown}")


# -- attacks on every server -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_header_bomb_is_refused_431_and_rss_stays_flat(servers, part):
    server = servers[part]
    before = server.rss_kb()
    statuses, sent, closed_after = [], [], []
    socks = [server.connect() for _ in range(10)]

    def bomb(sock: socket.socket) -> None:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bomb: ")
        sent.append(push(sock, 20 * MB, b"a" * 65536))
        response, closed = read_until_closed(sock, 10)
        statuses.append(status_of(response))
        closed_after.append(closed - started)
        if status_of(response) == 431:
            assert json_error(response)["code"] == "headers_too_large"

    threads = [threading.Thread(target=bomb, args=(s,)) for s in socks]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in socks:
            s.close()
    growth = server.rss_kb() - before
    report(
        part,
        "header bomb",
        rss_growth_kb=growth,
        max_close_s=round(max(closed_after), 2),
        statuses=sorted({str(s) for s in statuses}),
        max_sent_mb=round(max(sent) / MB, 1),
    )
    assert len(statuses) == 10
    assert 431 in statuses and set(statuses) <= {431, None}  # None: reset before we read it
    assert max(sent) < 20 * MB  # nobody got to push the whole 20 MB
    assert growth < RSS_BOUND_KB
    assert (
        server.metric(f'{part}_connections_closed_by_limit_total{{reason="headers_too_large"}}')
        >= 10
    )
    # The server still answers.
    assert httpx.get(f"{server.base}{server.health}", timeout=10).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_slow_headers_are_cut_at_the_header_timeout(servers, part):
    server = servers[part]
    sock = server.connect()
    opened = time.monotonic()
    stop = threading.Event()

    def drip() -> None:
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
                if stop.wait(0.2):
                    return
                sock.send(bytes([byte]))
        except OSError:
            return

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        response, closed = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S + 5)
    finally:
        stop.set()
        dripper.join(5)
        sock.close()
    took = closed - opened
    report(part, "slow headers", closed_after_s=round(took, 2), status=status_of(response))
    assert status_of(response) == 408
    assert json_error(response)["code"] == "header_timeout"
    assert took < HEADER_TIMEOUT_S + SLACK_S
    assert (
        server.metric(f'{part}_connections_closed_by_limit_total{{reason="header_timeout"}}') >= 1
    )


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_a_stalled_body_is_cut_at_the_body_timeout(servers, part):
    # The head arrives at once, then 10 of 1000 promised body bytes, then nothing.
    server = servers[part]
    method, path = ("POST", "/v1/me/playlists") if part == "delivery" else ("GET", server.health)
    sock = server.connect()
    try:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b'{"name": "'
        )
        stalled = time.monotonic()
        response, closed = read_until_closed(sock, BODY_TIMEOUT_S + SLACK_S + 5)
    finally:
        sock.close()
    took = closed - stalled
    report(part, "stalled body", closed_after_s=round(took, 2), status=status_of(response))
    assert took < BODY_TIMEOUT_S + SLACK_S
    if part == "delivery":  # the app waits for the body, so the bound answers
        assert status_of(response) == 408
        assert json_error(response)["code"] == "body_timeout"
        assert server.metric('delivery_connections_closed_by_limit_total{reason="body_timeout"}')
    # Origin and edge answer a GET without reading its body; the connection still closes.


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_idle_flood_is_closed_and_capped(servers, part):
    server = servers[part]
    before = server.rss_kb()
    opened = time.monotonic()
    socks = [server.connect() for _ in range(2 * MAX_CONNECTIONS)]
    try:
        results = [read_until_closed(s, IDLE_TIMEOUT_S + SLACK_S + 5) for s in socks]
    finally:
        for s in socks:
            s.close()
    refused = [r for r, _ in results if status_of(r) == 503]
    silent = [closed - opened for r, closed in results if not r]
    report(
        part,
        "idle flood",
        refused_503=len(refused),
        closed_silently=len(silent),
        max_close_s=round(max(silent), 2),
        rss_growth_kb=server.rss_kb() - before,
    )
    # Past the limit: 503 at once (the health probe may hold one slot a moment longer).
    assert MAX_CONNECTIONS - 2 <= len(refused) <= MAX_CONNECTIONS + 2
    assert json_error(refused[0])["code"] == "too_many_connections"
    assert len(refused) + len(silent) == len(socks)
    assert max(silent) < IDLE_TIMEOUT_S + SLACK_S
    assert server.metric(f"{part}_connections_rejected_total") >= len(refused)
    assert server.metric(
        f'{part}_connections_closed_by_limit_total{{reason="idle_timeout"}}'
    ) >= len(silent)


@pytest.mark.slow
@pytest.mark.parametrize("part", ["origin", "edge"])
def test_get_with_a_huge_body_is_not_read(servers, part):
    server = servers[part]
    before = server.rss_kb()
    sock = server.connect()
    try:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % (server.health.encode(), 90 * MB)
        )
        started = time.monotonic()
        sent = push(sock, 90 * MB, b"b" * 65536)
        response, closed = read_until_closed(sock, 10)
    finally:
        sock.close()
    report(
        part,
        "GET body bomb",
        sent_mb=round(sent / MB, 1),
        closed_after_s=round(closed - started, 2),
        rss_growth_kb=server.rss_kb() - before,
    )
    assert sent < 90 * MB
    assert status_of(response) in (200, 413, None)
    assert server.rss_kb() - before < RSS_BOUND_KB


# -- delivery: bodies before authentication ---------------------------------------------


def body_bomb(server: Server, head: bytes, chunk: bytes, attack: str, path: str) -> bytes:
    """Send ``head`` then up to 90 MB of ``chunk``; report and bound what the server did."""
    before = server.rss_kb()
    sock = server.connect()
    try:
        sock.sendall(head)
        started = time.monotonic()
        sent = push(sock, 90 * MB, chunk)
        response, closed = read_until_closed(sock, 10)
    finally:
        sock.close()
    report(
        "delivery",
        attack,
        path=path,
        sent_mb=round(sent / MB, 1),
        closed_after_s=round(closed - started, 2),
        rss_growth_kb=server.rss_kb() - before,
    )
    assert status_of(response) in (413, None)
    if response:
        assert json_error(response)["code"] == "body_too_large"
    assert sent < 90 * MB
    assert server.rss_kb() - before < RSS_BOUND_KB
    return response


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/me/playlists", "/v1/dev/token"])
def test_delivery_declared_body_bomb_is_413_before_auth(servers, path):
    head = (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: %d\r\n\r\n{"name": "' % (path.encode(), 90 * MB)
    )
    body_bomb(servers["delivery"], head, b"c" * 65536, "body declared", path)


@pytest.mark.slow
def test_delivery_declared_body_bomb_answer_is_readable(servers):
    # Without pushing the body the 413 always arrives (no reset can overtake it).
    sock = servers["delivery"].connect()
    try:
        sock.sendall(
            b"POST /v1/dev/token HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (90 * MB)
        )
        response, _ = read_until_closed(sock, 10)
    finally:
        sock.close()
    assert status_of(response) == 413
    assert json_error(response) == {
        "status": 413,
        "code": "body_too_large",
        "message": f"request body exceeds {MAX_BODY} bytes",
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/me/playlists", "/v1/dev/token"])
def test_delivery_chunked_body_bomb_is_cut_at_the_limit(servers, path):
    server = servers["delivery"]
    head = (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % path.encode()
    )
    body_bomb(server, head, b"%x\r\n%s\r\n" % (65536, b"d" * 65536), "body chunked", path)
    assert server.metric('delivery_connections_closed_by_limit_total{reason="body_too_large"}') >= 1


@pytest.mark.slow
def test_delivery_small_bodies_still_work(servers):
    with httpx.Client(base_url=servers["delivery"].base, timeout=10) as client:
        minted = client.post("/v1/dev/token", json={"user_id": "free-user"})
        assert minted.status_code == 200
        auth = {"Authorization": f"Bearer {minted.json()['access_token']}"}

        def chunked():  # no Content-Length: counted as it streams, well under the limit
            yield b'{"name": "'
            yield b"x" * 50
            yield b'"}'

        headers = {**auth, "Content-Type": "application/json"}
        created = client.post("/v1/me/playlists", content=chunked(), headers=headers)
        assert created.status_code == 201, created.text


# -- the pure pieces -------------------------------------------------------------------


def test_limits_refuse_non_positive_values():
    with pytest.raises(ValueError, match="max_connections"):
        ConnectionLimits("x", max_connections=0)
    with pytest.raises(ValueError, match="header_timeout_s"):
        ConnectionLimits("x", header_timeout_s=0)
    limits = ConnectionLimits("x", header_timeout_s=10, idle_timeout_s=2)
    assert limits.first_byte_timeout_s == 2 and limits.sweep_interval_s == 0.5


def test_error_response_is_one_closing_json_answer():
    raw = error_response(431, "headers_too_large", "too big")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in head and b"content-length: %d" % len(body) in head
    assert json.loads(body) == {
        "error": {"status": 431, "code": "headers_too_large", "message": "too big"}
    }


def test_collector_names_the_part():
    names = {m.name for m in ConnectionCollector("unit").collect()}
    assert names == {
        "unit_connections_open",
        "unit_connections_rejected",
        "unit_connections_closed_by_limit",
    }


async def _run(app, scope: dict, chunks: list[bytes]) -> list[dict]:
    """Drive an ASGI app with these body chunks; returns what it sent."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_body_limit_middleware(anyio_backend):
    got: list[int] = []

    async def app(scope, receive, send):
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            got.append(total)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def parse_errors_become_400(scope, receive, send):
        # What FastAPI does with a failing body read: its own answer, replaced by ours.
        try:
            await app(scope, receive, send)
        except Exception:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"bad"})

    limited = BodyLimit(parse_errors_become_400, max_bytes=100)
    # Declared too large: answered without calling the app.
    sent = await _run(limited, _scope([(b"content-length", b"101")]), [b"x" * 101])
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert got == []
    # Declared small: passed through untouched.
    sent = await _run(limited, _scope([(b"content-length", b"100")]), [b"x" * 100])
    assert sent[0]["status"] == 200 and got == [100]
    # Chunked: cut at the limit; the app never sees more than 100 bytes.
    got.clear()
    sent = await _run(limited, _scope([]), [b"x" * 60, b"x" * 60, b"x" * 60])
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert got == [60]


def test_settings_are_validated_and_named(monkeypatch):
    from pydantic import ValidationError

    from delivery.settings import SettingsError, load_settings
    from edge.errors import EdgeConfigError
    from edge.settings import load_settings as load_edge
    from origin.settings import OriginSettings, describe_validation_error

    monkeypatch.setenv("EDGE_MAX_HEADER_BYTES", "32KiB")  # the edge's sizes take units
    assert load_edge().max_header_bytes == 32 * 1024
    monkeypatch.setenv("EDGE_MAX_CONNECTIONS", "0")
    with pytest.raises(EdgeConfigError, match="EDGE_MAX_CONNECTIONS"):
        load_edge()
    monkeypatch.setenv("ORIGIN_HEADER_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError) as caught:
        OriginSettings()
    assert describe_validation_error(caught.value).startswith("ORIGIN_HEADER_TIMEOUT_S:")
    monkeypatch.setenv("DELIVERY_DEV_MODE", "true")
    monkeypatch.setenv("DELIVERY_MAX_BODY_BYTES", "0")
    with pytest.raises(SettingsError, match="DELIVERY_MAX_BODY_BYTES"):
        load_settings()


# -- the protocol on a fake transport ----------------------------------------------------


async def _ok_app(scope, receive, send):
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _protocol(**limits):
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from common.serving import BoundedHttpToolsProtocol

    config = uvicorn.Config(_ok_app, log_level="warning", lifespan="off")
    config.load()
    limits = ConnectionLimits("unit", **{"header_timeout_s": 1, "idle_timeout_s": 1, **limits})
    protocol = BoundedHttpToolsProtocol(
        config, ServerState(), {}, asyncio.get_running_loop(), limits=limits
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def _settle() -> None:
    import asyncio

    for _ in range(5):
        await asyncio.sleep(0)


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_keep_alive_and_pipelining_still_work(anyio_backend):
    protocol, transport = _protocol()
    protocol.data_received(GET)
    await _settle()
    protocol.data_received(GET + GET)  # two pipelined requests in one read
    await _settle()
    assert transport.written.count(b"HTTP/1.1 200 OK") == 3 and not transport.closed
    # A small head followed by a big body in the same read is not a big head.
    body = b"x" * 100_000
    protocol.data_received(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    await _settle()
    assert transport.written.count(b"HTTP/1.1 200 OK") == 4 and not transport.closed
    protocol.connection_lost(None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_refuses_a_big_head_across_reads(anyio_backend):
    protocol, transport = _protocol(max_header_bytes=2048)
    protocol.data_received(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 1500)
    assert not transport.closed
    protocol.data_received(b"a" * 1500)
    assert transport.closed and transport.written.startswith(b"HTTP/1.1 431 ")
    assert protocol.stats.closed["headers_too_large"] >= 1
    protocol.connection_lost(None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_deadlines(anyio_backend):
    # Never a byte: closed silently after the idle timeout.
    protocol, transport = _protocol(idle_timeout_s=1, header_timeout_s=5)
    opened = protocol.loop.time()
    protocol.check_deadlines(opened + 0.5)
    assert not transport.closed
    protocol.check_deadlines(opened + 1.0)
    assert transport.closed and transport.written == b""
    protocol.connection_lost(None)
    # A keep-alive request's clock starts at its first byte, and stops once the head is in.
    protocol, transport = _protocol(header_timeout_s=1)
    protocol.data_received(GET)
    await _settle()
    protocol.check_deadlines(protocol.loop.time() + 100)  # idle keep-alive: uvicorn's timer
    assert not transport.closed
    protocol.data_received(b"GET / HT")
    started = protocol.loop.time()
    protocol.check_deadlines(started + 0.5)
    assert not transport.closed
    protocol.check_deadlines(started + 1.5)
    assert transport.closed and transport.written.endswith(
        b'"header_timeout","message":"request headers not received within 1 s"}}'
    )
    protocol.connection_lost(None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_body_timeout_counts_pauses_not_the_whole_body(anyio_backend):
    protocol, transport = _protocol(body_timeout_s=2)
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
    started = protocol.loop.time()
    protocol.check_deadlines(started + 1.5)
    protocol.data_received(b"b" * 10)  # a read restarts the clock
    resumed = protocol.loop.time()
    protocol.check_deadlines(resumed + 1.5)
    assert not transport.closed
    protocol.flow.pause_reading()  # the app is behind: a pause that is ours is not counted
    protocol.check_deadlines(resumed + 10)
    assert not transport.closed
    protocol.flow.resume_reading()
    protocol.check_deadlines(resumed + 2.5)
    assert transport.closed and transport.written.startswith(b"HTTP/1.1 408 ")
    assert b'"body_timeout"' in transport.written
    assert protocol.stats.closed["body_timeout"] >= 1
    protocol.connection_lost(None)
    # A request without a body never starts the clock.
    protocol, transport = _protocol(body_timeout_s=1)
    protocol.data_received(GET)
    await _settle()
    protocol.check_deadlines(protocol.loop.time() + 0.9)
    assert not transport.closed
    protocol.connection_lost(None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_bounds_bodies(anyio_backend):
    protocol, transport = _protocol(max_body_bytes=1000)
    protocol.data_received(
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"b" * 1001
    )
    assert transport.closed and transport.written.startswith(b"HTTP/1.1 413 ")
    protocol.connection_lost(None)
    # Without a body limit, a body still arriving after the answer is not drained forever.
    protocol, transport = _protocol()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    await _settle()
    assert transport.written.startswith(b"HTTP/1.1 200 OK")
    for _ in range(3):
        protocol.data_received(b"b" * 30_000)
    assert transport.closed and transport.written.count(b"HTTP/1.1") == 1
    protocol.connection_lost(None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_protocol_rejects_past_max_connections(anyio_backend):
    first, first_transport = _protocol(max_connections=1)
    second = type(first)(first.config, first.server_state, {}, first.loop, limits=first.limits)
    transport = FakeTransport()
    second.connection_made(transport)
    assert transport.closed and transport.written.startswith(b"HTTP/1.1 503 ")
    assert not first_transport.closed
    second.connection_lost(None)
    first.connection_lost(None)
