"""Fixtures for the edge: keys, a LocalStore with random objects, settings, in-process clients.

In-process tests drive the real :class:`edge.app.EdgeApp` through :func:`serving`,
which every async test of a module using it runs twice (``pytest_generate_tests``):
``[asgi]`` through ``httpx.ASGITransport``, and ``[socket]`` through uvicorn on a
loopback port with the options ``edge serve`` uses (:func:`edge.server.serve_options`:
the bounded protocol that answers memory hits below ASGI), so each behaviour is
checked on both ways a response can be made. The upstream is either the store
itself (``file://``) or an ``httpx.MockTransport`` that injects faults. Tests
against real processes live in ``test_processes.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common.signing_keys import SigningKey, eddsa_signing_key, ensure_dev_keypair, hs256_signing_key
from edge.app import EdgeApp, create_app
from edge.settings import EdgeSettings
from edge.token import sign_stream_token
from origin.local import LocalStore

KEY = "tracks/t1/0123456789abcdef/160.ogg"
PULL_TOKEN = "pull-" + "p" * 40
HS_SECRET = "hs-secret-" + "s" * 40


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return ensure_dev_keypair(tmp_path / "keys")


@pytest.fixture
def ed_key(keypair) -> SigningKey:
    return eddsa_signing_key(keypair[0].read_bytes())


@pytest.fixture
def hs_key() -> SigningKey:
    return hs256_signing_key(HS_SECRET)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def put_random(store: LocalStore, key: str = KEY, size: int = 300_000) -> bytes:
    data = os.urandom(size)
    store.put_bytes(key, data)
    return data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def make_settings(tmp_path: Path, keypair) -> Callable[..., EdgeSettings]:
    def make(**overrides) -> EdgeSettings:
        values = {
            "upstream": "http://origin.test",
            "token_public_keys": str(keypair[1]),
            "token_hs256_secrets": HS_SECRET,
            "cache_dir": tmp_path / "cache",
            "access_log": str(tmp_path / "access.log"),
            "pull_token": PULL_TOKEN,
            "upstream_backoff_s": 0.0,
            "dev_mode": False,
        }
        values.update(overrides)
        return EdgeSettings(**values)

    return make


@pytest.fixture
def sign(ed_key) -> Callable[..., str]:
    def signer(path: str, *, ttl: int = 600, ip: str | None = None, key=None, now=None) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return sign_stream_token(path, key=key or ed_key, ttl_s=ttl, sub="user-1", ip=ip, now=now)

    return signer


@pytest.fixture
def url(sign) -> Callable[..., str]:
    def build(key: str = KEY, **kwargs) -> str:
        return f"/{key}?token={sign('/' + key, **kwargs)}"

    return build


# The socket way pays uvicorn's start and stop (~0.2 s) per test: ``make test`` runs
# it, the inner loop (``make test-fast``) serves through ASGI only.
SERVING_WAYS = ("asgi", pytest.param("socket", marks=pytest.mark.slow))
# The way of the running test (tests run one at a time; a global also reaches the
# async fixtures, which anyio runs in a context of their own).
_serving_way = {"way": "asgi"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every async test of a module that serves an app through serving(), both ways.
    if "serving_way" in metafunc.fixturenames and (
        getattr(metafunc.module, "serving", None) is serving
        and metafunc.definition.get_closest_marker("anyio") is not None
    ):
        metafunc.parametrize("serving_way", SERVING_WAYS, indirect=True)


@pytest.fixture(autouse=True)
def serving_way(request) -> Iterator[str]:
    """How :func:`serving` serves the app in this test (``asgi`` unless parametrized)."""
    way = _serving_way["way"] = getattr(request, "param", "asgi")
    yield way
    _serving_way["way"] = "asgi"


@contextlib.asynccontextmanager
async def serving(app: EdgeApp, way: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` (started and shut down around it): through ASGI in-process, or
    over a loopback socket to uvicorn serving it as ``edge serve`` does."""
    async with app.running():
        if (way or _serving_way["way"]) == "socket":
            # As over ASGI: no pool bound (tests hold hundreds of requests open at once)
            # and no client timeout (a test's own waits bound it).
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            async with (
                uvicorn_serving(app) as base_url,
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=None) as client,
            ):
                yield client
            return
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield client


def cut_short() -> type[BaseException]:
    """What a client of :func:`serving` sees when the edge cuts a response short
    (:mod:`edge.fill`): the app's ResponseAborted through ASGI; over a socket, a body
    that ends before its Content-Length."""
    from edge.errors import ResponseAborted

    return ResponseAborted if _serving_way["way"] == "asgi" else httpx.RemoteProtocolError


@contextlib.asynccontextmanager
async def uvicorn_serving(app: EdgeApp) -> AsyncIterator[str]:
    """``app`` (already started) behind uvicorn in this event loop, on a free loopback port,
    with ``edge serve``'s options; yields the base URL."""
    import asyncio
    import socket

    import uvicorn

    from edge.server import serve_options

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    options = {**serve_options(app.settings), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **options))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # start-up failed: raise why
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def store_edge(make_settings, store) -> Callable[..., EdgeApp]:
    """An edge whose upstream is the LocalStore, read directly."""

    def build(**overrides) -> EdgeApp:
        return create_app(make_settings(upstream=store.url, **overrides))

    return build


def access_lines(tmp_path: Path) -> list[dict]:
    import json

    path = tmp_path / "access.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def call_raw(app: EdgeApp, target: str, headers=(), method: str = "GET"):
    """Drive the ASGI app directly (no client-side URL normalisation); collects what it sends.

    Returns ``(start_message, body_bytes)``; exceptions from the app propagate.
    """
    import asyncio

    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 40000),
    }
    received_request = False
    never = asyncio.Event()
    start: dict = {}
    body = bytearray()

    async def receive():
        nonlocal received_request
        if not received_request:
            received_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    try:
        await app(scope, receive, send)
    finally:
        call_raw.last_body = bytes(body)  # type: ignore[attr-defined]
    return start, bytes(body)
