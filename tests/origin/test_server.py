"""The origin server over HTTP: the ASGI app driven by httpx (and raw ASGI where needed)."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from email.utils import format_datetime, parsedate_to_datetime

import anyio
import httpx
import pytest

from origin.errors import StoreUnavailable
from origin.keys import latest_key, rendition_key
from origin.server import create_app
from tests.origin.backends import unreachable_store

pytestmark = pytest.mark.anyio

TOKEN = "pull-token-for-tests-0123456789"
OLD_TOKEN = "previous-pull-token-9876543210"
V = "0123456789abcdef"
KEY = rendition_key("song", V, 160)
DATA = bytes(range(256)) * 40  # 10240 bytes
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class SpyStore:
    """Wraps a real store and records every call that reaches it, and every chunk read."""

    def __init__(self, inner, fail_after_chunks: int | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: list[str] = []
        self.chunks_read = 0
        self.closed = 0
        self.fail_after_chunks = fail_after_chunks
        self.before_open = None

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return call

    def open_range(self, key, start=0, end=None):
        self.calls.append("open_range")
        if self.before_open is not None:
            hook, self.before_open = self.before_open, None
            hook()
        reader = self.inner.open_range(key, start, end)
        spy = self

        class Reader:
            info, start, end = reader.info, reader.start, reader.end

            def __iter__(self):
                for chunk in reader:
                    if (
                        spy.fail_after_chunks is not None
                        and spy.chunks_read >= spy.fail_after_chunks
                    ):
                        raise StoreUnavailable("injected failure")
                    spy.chunks_read += 1
                    yield chunk

            def close(self):
                spy.closed += 1
                reader.close()

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.close()

        return Reader()


@pytest.fixture
def spy(local_store):
    local_store.put_bytes(KEY, DATA)
    return SpyStore(local_store)


@pytest.fixture
def app(spy):
    return create_app(spy, [TOKEN, OLD_TOKEN])


def origin_client(app) -> httpx.AsyncClient:
    """A client that calls ``app`` in-process (no socket), as an edge would over HTTP."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://origin")


@pytest.fixture
async def client(app):
    async with origin_client(app) as c:
        yield c


async def get(client, path=f"/{KEY}", headers=None, method="GET"):
    return await client.request(method, path, headers={**AUTH, **(headers or {})})


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == response.status_code
    assert response.headers["content-type"] == "application/json"
    return body["error"]


# -- whole objects ----------------------------------------------------------------------


async def test_get_returns_the_object_with_its_headers(client, local_store):
    r = await get(client)
    info = local_store.stat(KEY)
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["content-type"] == "audio/ogg"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == info.etag
    assert parsedate_to_datetime(r.headers["last-modified"]) == info.modified.replace(microsecond=0)
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(DATA).hexdigest()
    assert "immutable" in r.headers["cache-control"]


async def test_latest_json_must_be_revalidated(client, local_store):
    local_store.put_bytes(latest_key("song"), b'{"version": "0123456789abcdef"}')
    r = await get(client, f"/{latest_key('song')}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-cache"


async def test_head_sends_the_headers_without_a_body(client, spy):
    r = await get(client, method="HEAD")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(DATA).hexdigest()
    assert "open_range" not in spy.calls  # a HEAD never opens a read


async def test_empty_object(client, local_store):
    local_store.put_bytes(latest_key("empty"), b"")
    r = await get(client, f"/{latest_key('empty')}")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "0")
    r = await get(client, f"/{latest_key('empty')}", {"Range": "bytes=0-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */0"


# -- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=10239-10239", 10239, 10239),
        ("bytes=10000-", 10000, 10239),  # open-ended, as players seek
        ("bytes=-100", 10140, 10239),  # suffix: the last 100 bytes
        ("bytes=-999999", 0, 10239),  # suffix longer than the object
        ("bytes=10200-99999", 10200, 10239),  # end clamped
    ],
)
async def test_single_ranges_answer_206(client, header, start, end):
    r = await get(client, headers={"Range": header})
    assert r.status_code == 206
    assert r.content == DATA[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["content-length"] == str(end - start + 1)
    # The checksum always describes the WHOLE object, also on a 206.
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-30000", "bytes=-0"])
async def test_unsatisfiable_range_is_416_with_the_size(client, header):
    r = await get(client, headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert error_of(r)["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header", ["bytes=abc", "bytes=5-1", "bytes", "bytes=--1", "items=0-1", "bytes=0-1,5-9"]
)
async def test_malformed_or_unsupported_range_is_ignored(client, header):
    r = await get(client, headers={"Range": header})
    assert r.status_code == 200
    assert r.content == DATA


async def test_head_with_a_range_describes_the_partial_answer(client):
    r = await get(client, headers={"Range": "bytes=0-9"}, method="HEAD")
    assert r.status_code == 206
    assert r.headers["content-length"] == "10"
    assert r.content == b""


# -- conditional requests ---------------------------------------------------------------


async def test_if_none_match_answers_304(client, spy):
    etag = (await get(client)).headers["etag"]
    calls = len(spy.calls)
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = await get(client, headers={"If-None-Match": value})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert "cache-control" in r.headers
    assert "open_range" not in spy.calls[calls:]  # nothing was read for a 304


async def test_if_none_match_with_another_tag_sends_the_object(client):
    r = await get(client, headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200
    assert r.content == DATA


async def test_if_modified_since(client, local_store):
    modified = local_store.stat(KEY).modified
    later = format_datetime(modified.replace(microsecond=0), usegmt=True)
    r = await get(client, headers={"If-Modified-Since": later})
    assert r.status_code == 304
    r = await get(client, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200
    # If-None-Match takes precedence over If-Modified-Since.
    r = await get(client, headers={"If-Modified-Since": later, "If-None-Match": '"nope"'})
    assert r.status_code == 200
    r = await get(client, headers={"If-Modified-Since": "not a date"})
    assert r.status_code == 200


async def test_if_match_and_if_unmodified_since_answer_412_before_any_read(client, spy):
    etag = (await get(client, method="HEAD")).headers["etag"]
    assert (await get(client, headers={"If-Match": etag})).status_code == 200
    calls = len(spy.calls)
    for headers in (
        {"If-Match": '"other"'},
        {"If-Match": f"W/{etag}"},  # the strong comparison
        {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
        {"If-Match": '"other"', "If-None-Match": etag},  # If-Match is evaluated first
    ):
        r = await get(client, headers=headers)
        assert r.status_code == 412, headers
        assert r.json()["error"]["code"] == "precondition_failed"
    assert "open_range" not in spy.calls[calls:]


async def test_if_range_with_the_current_etag_serves_the_range(client):
    etag = (await get(client, method="HEAD")).headers["etag"]
    r = await get(client, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (r.status_code, r.content) == (206, DATA[:10])


@pytest.mark.parametrize("validator", ['"stale-etag"', 'W/"weak"', "Mon, 01 Jan 2001 00:00:00 GMT"])
async def test_if_range_with_a_stale_validator_sends_the_whole_object(client, validator):
    r = await get(client, headers={"Range": "bytes=0-9", "If-Range": validator})
    assert (r.status_code, r.content) == (200, DATA)


async def test_if_range_with_the_current_date_serves_the_range(client):
    modified = (await get(client, method="HEAD")).headers["last-modified"]
    r = await get(client, headers={"Range": "bytes=0-9", "If-Range": modified})
    assert r.status_code == 206


# -- authentication ---------------------------------------------------------------------


async def test_without_a_token_401_and_no_store_io(client, spy):
    spy.calls.clear()
    r = await client.get(f"/{KEY}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="origin"'
    assert error_of(r)["code"] == "unauthorized"
    assert spy.calls == []


@pytest.mark.parametrize(
    "value",
    [
        "Bearer wrong-token-0123456789",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        TOKEN,
        f"Bearer {TOKEN} {TOKEN}",  # strictly one token (common.bearer)
        f"Bearer\t{TOKEN}",
    ],
)
async def test_a_wrong_token_is_401(client, spy, value):
    spy.calls.clear()
    r = await client.get(f"/{KEY}", headers={"Authorization": value})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert spy.calls == []


async def test_every_configured_token_is_accepted_and_the_scheme_is_case_insensitive(client):
    for value in (f"Bearer {OLD_TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN}"):
        r = await client.get(f"/{KEY}", headers={"Authorization": value})
        assert r.status_code == 200, value


async def test_an_app_without_tokens_is_refused(local_store):
    with pytest.raises(ValueError):
        create_app(local_store, [])
    with pytest.raises(ValueError):
        create_app(local_store, ["", "  "])


async def test_unauthenticated_head_is_401_without_a_body(client):
    r = await client.head(f"/{KEY}")
    assert r.status_code == 401
    assert r.content == b""


# -- key validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "/tracks/%2e%2e/%2e%2e/etc/passwd",
        "/tracks/%2E%2E/%2E%2E/etc/passwd",
        "/tracks/song/..%2f..%2f..%2fetc%2fpasswd",
        "/tracks%2f..%2f..%2fetc%2fpasswd",
        "/tracks/so%00ng/latest.json",
        "/tracks/song%5c..%5clatest.json",
        "/tracks/%252e%252e/latest.json",
        "/%2fetc/passwd",
        "/etc/passwd",
        "/",
        "/tracks/song/latest.json/",
        "/tracks/song/0123456789abcdef/97.ogg",
    ],
)
async def test_bad_keys_are_400_before_any_store_io(client, spy, raw_path):
    spy.calls.clear()
    r = await get(client, raw_path)
    assert r.status_code == 400
    assert error_of(r)["code"] == "invalid_key"
    assert spy.calls == []


async def call_asgi(app, path: str, headers=(), method="GET", disconnect_after_body=None):
    """Drive the ASGI app directly: httpx would normalise a literal '..' away."""
    sent: list[dict] = []
    body_seen = anyio.Event()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "server": ("127.0.0.1", 8090),
        "client": ("127.0.0.1", 5000),
    }
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if disconnect_after_body is not None:
            await body_seen.wait()
            return {"type": "http.disconnect"}
        await anyio.sleep_forever()

    async def send(message):
        sent.append(message)
        bodies = [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
        if disconnect_after_body is not None and len(bodies) >= disconnect_after_body:
            body_seen.set()
            await anyio.sleep(0)

    await app(scope, receive, send)
    return sent


async def test_literal_dot_dot_is_400_with_nothing_read(app, spy):
    spy.calls.clear()
    sent = await call_asgi(app, "/tracks/../../etc/passwd", [("authorization", f"Bearer {TOKEN}")])
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "invalid_key"
    assert spy.calls == []


# -- other answers ----------------------------------------------------------------------------


async def test_missing_object_is_404_json(client):
    r = await get(client, f"/{latest_key('ghost')}")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405(client, spy, method):
    spy.calls.clear()
    r = await get(client, method=method)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert error_of(r)["code"] == "method_not_allowed"
    assert spy.calls == []
    assert (await client.request(method, "/healthz")).status_code == 405


async def test_unavailable_store_is_503(tmp_path):
    app = create_app(unreachable_store("s3", tmp_path), [TOKEN])
    async with origin_client(app) as client:
        r = await get(client)
        assert r.status_code == 503
        assert error_of(r)["code"] == "store_unavailable"
        assert "127.0.0.1" not in r.text  # backend details stay in the log


# -- health and metrics --------------------------------------------------------------------


async def test_healthz_needs_no_token(client, spy):
    spy.calls.clear()
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert spy.calls == []  # liveness never touches the store


@pytest.mark.parametrize("path", ["/readyz", "/healthz?ready=1"])
async def test_readiness_checks_the_store(client, spy, path, tmp_path):
    spy.calls.clear()
    r = await client.get(path)
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    assert spy.calls == ["check"]
    app = create_app(unreachable_store("gcs", tmp_path), [TOKEN])
    async with origin_client(app) as down:
        r = await down.get(path)
        assert r.status_code == 503
        assert error_of(r)["code"] == "not_ready"


async def test_metrics_count_requests_bytes_and_store_latency(client):
    await get(client, headers={"Range": "bytes=0-99"})
    await client.get(f"/{KEY}")  # 401
    await get(client, f"/{latest_key('ghost')}")  # 404
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'origin_http_requests_total{method="GET",status="206"} 1.0' in text
    assert 'origin_http_requests_total{method="GET",status="401"} 1.0' in text
    assert 'origin_http_requests_total{method="GET",status="404"} 1.0' in text
    sent = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("origin_http_response_body_bytes_total")
    )
    assert sent >= 100
    assert 'origin_store_operation_seconds_count{operation="stat"}' in text
    assert 'origin_store_operation_seconds_count{operation="open"} 1.0' in text
    assert 'origin_store_errors_total{error="ObjectNotFound",operation="stat"} 1.0' in text


async def test_lifespan_handshake(app):
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# -- streaming -------------------------------------------------------------------------------


async def test_large_objects_stream_in_chunks_with_bounded_memory(local_store):
    big = rendition_key("big", V, 320)
    block = bytes(range(256)) * 4096  # 1 MiB
    source = local_store.root.parent / "big.ogg"
    with open(source, "wb") as fh:
        for _ in range(24):
            fh.write(block)
    local_store.put_file(big, source)
    app = create_app(local_store, [TOKEN])
    digest = hashlib.sha256()
    sizes = []

    async def send(message):
        if message["type"] == "http.response.body":
            sizes.append(len(message.get("body", b"")))
            digest.update(message.get("body", b""))

    async def receive():
        await anyio.sleep_forever()

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/{big}",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        "query_string": b"",
    }
    tracemalloc.start()
    try:
        await app(scope, receive, send)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(sizes) == 24 * len(block)
    assert digest.hexdigest() == hashlib.sha256(block * 24).hexdigest()
    assert max(sizes) <= 1024 * 1024 and len(sizes) > 24
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a 24 MiB object"


async def test_client_disconnect_stops_the_read(local_store):
    big = rendition_key("big", V, 96)
    local_store.put_bytes(big, b"x" * (64 * 256 * 1024))  # 64 chunks
    spy = SpyStore(local_store)
    app = create_app(spy, [TOKEN])
    sent = await call_asgi(
        app, f"/{big}", [("authorization", f"Bearer {TOKEN}")], disconnect_after_body=1
    )
    assert sent[0]["status"] == 200
    assert spy.chunks_read < 8  # far fewer than the 64 chunks of the object
    assert spy.closed == 1
    assert not any(m.get("more_body") is False for m in sent if m["type"] == "http.response.body")


async def test_a_store_failure_mid_stream_ends_the_response_short(local_store):
    big = rendition_key("big", V, 96)
    local_store.put_bytes(big, b"y" * (4 * 256 * 1024))
    spy = SpyStore(local_store, fail_after_chunks=1)
    app = create_app(spy, [TOKEN])
    sent = await call_asgi(app, f"/{big}", [("authorization", f"Bearer {TOKEN}")])
    assert sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    # One chunk went out, then the response stopped without its final message, so
    # the client sees fewer bytes than Content-Length and cannot cache a torn object.
    assert sum(len(m["body"]) for m in bodies) == 256 * 1024
    assert all(m.get("more_body") for m in bodies)
    assert spy.closed == 1


async def test_an_object_replaced_between_stat_and_open_is_served_consistently(client, spy):
    new = b"N" * 5000
    spy.before_open = lambda: spy.inner.put_bytes(KEY, new)
    r = await get(client)
    assert r.status_code == 200
    assert r.content == new
    assert r.headers["content-length"] == str(len(new))
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(new).hexdigest()
    assert spy.calls.count("open_range") == 2  # the first read was dropped, then re-decided


async def test_a_store_failure_before_the_first_byte_is_503(local_store):
    local_store.put_bytes(KEY, DATA)
    spy = SpyStore(local_store, fail_after_chunks=0)
    app = create_app(spy, [TOKEN])
    async with origin_client(app) as client:
        r = await get(client)
    assert r.status_code == 503
    assert error_of(r)["code"] == "store_unavailable"
    assert spy.closed == 1
