"""common.request_wrapper: the request id, metric and access line every part shares."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from common.logs import accept_request_id, configure_logging, request_id_var
from common.metrics import register_flush
from common.request_wrapper import Request, RequestWrapper, sequential_ids

pytestmark = pytest.mark.anyio


async def app(scope, receive, send) -> None:
    """Answers ``/fail`` with 503 and anything else 200 with 5 bytes, noting the bound id."""
    status = 503 if scope["path"] == "/fail" else 200
    body = b"hello" if status == 200 else b""
    headers = [(b"x-seen-id", (request_id_var.get() or "").encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client(wrapper: RequestWrapper) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapper), base_url="http://t")


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("unit", "info", stream=stream)
    yield stream
    logging.getLogger().handlers[:] = []


def access_lines(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in lines if e["logger"] == "unit.access"]


async def test_asgi_form_reuses_echoes_and_binds_the_request_id(log_stream):
    seen: list[Request] = []
    wrapper = RequestWrapper(app, part="unit", observe=seen.append)
    async with client(wrapper) as c:
        given = await c.get("/a", headers={"X-Request-Id": "player-7"})
        bad = await c.get("/b", headers={"X-Request-Id": "no spaces please"})
        failed = await c.get("/fail")
        await c.get("/healthz")
    assert given.headers["x-request-id"] == given.headers["x-seen-id"] == "player-7"
    assert bad.headers["x-request-id"] == bad.headers["x-seen-id"] != "no spaces please"
    assert len(failed.headers["x-request-id"]) == 32  # a uuid4 by default
    assert request_id_var.get() is None  # unbound after each request
    assert [(r.path, r.status, r.nbytes) for r in seen] == [
        ("/a", 200, 5),
        ("/b", 200, 5),
        ("/fail", 503, 0),
        ("/healthz", 200, 5),  # observed (metrics) but not logged
    ]
    lines = access_lines(log_stream)
    assert [(e["path"], e["status"], e["bytes"], e["request_id"]) for e in lines] == [
        ("/a", 200, 5, "player-7"),
        ("/b", 200, 5, bad.headers["x-request-id"]),
        ("/fail", 503, 0, failed.headers["x-request-id"]),
    ]
    assert all(e["method"] == "GET" and isinstance(e["ms"], float) for e in lines)


async def test_routes_label_the_request_and_decide_what_is_quiet(log_stream):
    seen: list[Request] = []
    wrapper = RequestWrapper(
        app,
        part="unit",
        observe=seen.append,
        route=lambda scope: "/items/{id}" if scope["path"].startswith("/items/") else "/ping",
        quiet={"/ping"},
        echo_request_id=False,
    )
    async with client(wrapper) as c:
        answer = await c.get("/items/42")
        await c.get("/ping")
    assert "x-request-id" not in answer.headers
    assert [r.route for r in seen] == ["/items/{id}", "/ping"]
    assert [(e["path"], e["route"]) for e in access_lines(log_stream)] == [
        ("/items/42", "/items/{id}")
    ]


def test_inline_halves_with_the_parts_own_access_line():
    """The edge's way: begin/end around its handler, its own line, its own fields."""
    lines: list[tuple] = []
    counted: list[int] = []
    wrapper = RequestWrapper(
        part="unit",
        observe=lambda r: counted.append(r.status),
        access_log=lambda r: lines.append((r.request_id, r.status, r.nbytes, r.fields)),
        quiet=(),
        echo_request_id=False,
        new_id=sequential_ids(),
    )
    scope = {"method": "GET", "path": "/x", "headers": [(b"range", b"bytes=0-1")]}
    first = wrapper.begin(scope)
    assert request_id_var.get() == first.request_id
    first.status, first.nbytes, first.fields = 206, 2, ("HIT",)
    wrapper.end(first)
    second = wrapper.begin({**scope, "headers": [(b"x-request-id", b"abc")]})
    wrapper.end(second)  # the app set nothing: a 500
    assert request_id_var.get() is None
    assert counted == [206, 500]
    assert lines == [(first.request_id, 206, 2, ("HIT",)), ("abc", 500, 0, None)]


def test_sequential_ids_are_distinct_and_well_formed():
    new_id = sequential_ids()
    ids = [new_id() for _ in range(100)]
    assert len(set(ids)) == 100 and all(accept_request_id(i) == i for i in ids)


async def test_lifespan_shutdown_flushes_the_processes_metrics():
    class Counts:
        flushed = 0

        def flush(self) -> None:
            self.flushed += 1

    counts = Counts()
    register_flush(counts)

    async def lifespan_app(scope, receive, send) -> None:
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    messages = [{"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await RequestWrapper(lifespan_app, part="unit")({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.shutdown.complete"}] and counts.flushed == 1
