"""HTTP semantics of the edge app: headers, conditionals, ranges, methods, access log."""

from __future__ import annotations

import json

import pytest

from common.http_plan import NO_CONDITIONS, Conditionals
from edge.access_log import AccessLog
from edge.app import read_headers
from tests.edge.conftest import KEY, access_lines, call_raw, put_random, serving

# The planning itself (status, validators, ranges) is common.http_plan's, tested in
# tests/common/test_http_plan.py with the origin; here it is checked through the app.


def test_read_headers_collects_range_conditionals_and_authorization():
    assert read_headers([(b"range", b"bytes=0-1"), (b"user-agent", b"x")]) == (
        "bytes=0-1",
        NO_CONDITIONS,
        None,
    )
    assert read_headers([(b"range", b"bytes=0-1")])[1] is NO_CONDITIONS
    found = read_headers(
        [
            (b"if-none-match", b'"a"'),
            (b"authorization", b"Bearer t"),
            (b"if-none-match", b'W/"b"'),  # repeated: joined, as RFC 9110 reads it
            (b"if-modified-since", b"Thu, 26 Nov 2026 10:00:00 GMT"),
            (b"if-match", b"*"),
            (b"if-unmodified-since", b"Fri, 27 Nov 2026 10:00:00 GMT"),
            (b"if-range", b'"a"'),
        ]
    )
    assert found == (
        None,
        Conditionals(
            if_match="*",
            if_none_match='"a", W/"b"',
            if_modified_since="Thu, 26 Nov 2026 10:00:00 GMT",
            if_unmodified_since="Fri, 27 Nov 2026 10:00:00 GMT",
            if_range='"a"',
        ),
        b"Bearer t",
    )


def test_access_log_escapes_hostile_headers(tmp_path):
    log = AccessLog.open(str(tmp_path / "a.log"))
    log.record(1.0, "GET", '/x"y', 400, 'bytes=0-1","status":200', 10, None, "1.2.3.4", 0.1,
               error="invalid_path")  # fmt: skip
    log.flush()
    line = json.loads((tmp_path / "a.log").read_text())
    assert line["status"] == 400 and line["range"] == 'bytes=0-1","status":200'
    assert line["path"] == '/x"y' and line["error"] == "invalid_path"


@pytest.fixture
def hot(store, store_edge):
    data = put_random(store, KEY, 100_000)
    return store_edge(), data


@pytest.mark.anyio
async def test_response_headers_on_a_hit(hot, url, sign):
    app, data = hot
    async with serving(app) as client:
        await client.get(url())
        r = await client.get(url(ttl=300), headers={"range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    h = r.headers
    assert h["content-type"] == "audio/ogg"
    assert h["accept-ranges"] == "bytes"
    assert h["content-range"] == "bytes 10-19/100000"
    assert h["content-length"] == "10"
    assert h["x-cache"] == "HIT"
    assert h["etag"].startswith('"')
    cc = h["cache-control"]
    assert cc.startswith("private, max-age=") and cc.endswith(", immutable")
    assert 290 <= int(cc.split("max-age=")[1].split(",")[0]) <= 300


@pytest.mark.anyio
async def test_head_has_headers_and_no_body(hot, url):
    app, data = hot
    async with serving(app) as client:
        await client.get(url())
        r = await client.head(url())
        rr = await client.head(url(), headers={"range": "bytes=-10"})
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "100000"
    assert rr.status_code == 206 and rr.headers["content-range"] == "bytes 99990-99999/100000"


@pytest.mark.anyio
async def test_304_416_and_if_range_on_hits(hot, url):
    app, data = hot
    async with serving(app) as client:
        etag = (await client.get(url())).headers["etag"]
        not_modified = await client.get(url(), headers={"if-none-match": etag})
        too_far = await client.get(url(), headers={"range": "bytes=100000-"})
        matching = await client.get(url(), headers={"range": "bytes=0-9", "if-range": etag})
        stale = await client.get(url(), headers={"range": "bytes=0-9", "if-range": '"old"'})
        lm = not_modified.headers["last-modified"]
        since = await client.get(url(), headers={"if-modified-since": lm})
        garbage = await client.get(url(), headers={"if-modified-since": "yesterday"})
        failed = await client.get(url(), headers={"if-match": '"old"'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag and "cache-control" in not_modified.headers
    assert too_far.status_code == 416
    assert too_far.headers["content-range"] == "bytes */100000"
    assert too_far.json()["error"]["code"] == "range_not_satisfiable"
    assert matching.status_code == 206 and matching.content == data[:10]
    assert stale.status_code == 200 and stale.content == data
    # If-Modified-Since is honoured (dates parsed), If-Match checked: as at the origin.
    assert since.status_code == 304 and since.headers["etag"] == etag
    assert garbage.status_code == 200 and garbage.content == data
    assert failed.status_code == 412 and failed.json()["error"]["code"] == "precondition_failed"


@pytest.mark.anyio
async def test_seek_pattern_of_ogg_players(hot, url):
    """ffmpeg/Chromium read the last ~64 KiB first, then bisect with open-ended ranges."""
    app, data = hot
    async with serving(app) as client:
        tail = await client.get(url(), headers={"range": "bytes=-65536"})
        mid = await client.get(url(), headers={"range": "bytes=50000-"})
    assert tail.status_code == 206 and tail.content == data[-65536:]
    assert mid.status_code == 206 and mid.content == data[50000:]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/tracks/../../etc/passwd",
        "/tracks/t1/../../../etc/passwd",
        "/tracks/t1/0123456789abcdef/../../../x.ogg",
        "/tracks/t1/0123456789abcdef/160.ogg/..",
        "/tracks/%2e%2e/0123456789abcdef/160.ogg",
        "/tracks/t1/0123456789ABCDEF/160.ogg",
        "/tracks/t1/0123456789abcdef/161.ogg",
        "/tracks/t1/latest.json",
        "/tracks/t\x001/0123456789abcdef/160.ogg",
        "/tracks//0123456789abcdef/160.ogg",
    ],
)
async def test_bad_paths_are_refused_before_any_io(make_settings, sign, tmp_path, path):
    import httpx

    from edge.app import create_app

    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(500)

    app = create_app(make_settings(), transport=httpx.MockTransport(handler))
    async with app.running():
        before = sorted(p.name for p in (tmp_path / "cache").rglob("*"))
        start, body = await call_raw(app, f"{path}?token={sign(path)}")
        after = sorted(p.name for p in (tmp_path / "cache").rglob("*"))
    assert start["status"] == 400
    assert json.loads(body)["error"]["code"] == "invalid_path"
    assert calls == [] and before == after  # no upstream request, no cache file touched


@pytest.mark.anyio
async def test_methods_and_routes(hot, url):
    app, _ = hot
    async with serving(app) as client:
        post = await client.post(url())
        options = await client.options(url())
        nowhere = await client.get("/nope")
        metrics = await client.get("/metrics")
    assert post.status_code == 405 and "GET" in post.headers["allow"]
    assert options.status_code == 204
    assert "range" in options.headers["access-control-allow-headers"]
    assert nowhere.status_code == 404
    assert metrics.status_code == 200 and "edge_cache_requests_total" in metrics.text


@pytest.mark.anyio
async def test_access_log_records_status_range_and_cache(hot, url, tmp_path):
    app, _ = hot
    async with serving(app) as client:
        await client.get(url())
        await client.get(url(), headers={"range": "bytes=0-99"})
        await client.get("/" + KEY)
    lines = access_lines(tmp_path)
    assert [(x["status"], x["range"], x["cache"]) for x in lines] == [
        (200, None, "MISS"),
        (206, "bytes=0-99", "HIT"),
        (403, None, None),
    ]
    assert lines[1]["bytes"] == 100 and lines[2]["error"] == "token_missing"
    assert all("token" not in json.dumps(x).replace("token_missing", "") for x in lines)


@pytest.mark.anyio
async def test_metrics_count_hits_misses_and_bytes(hot, url):
    app, data = hot
    async with serving(app) as client:
        await client.get(url())
        await client.get(url(), headers={"range": "bytes=0-9"})
        text = (await client.get("/metrics")).text
    assert 'edge_cache_requests_total{result="miss"} 1.0' in text
    assert 'edge_cache_requests_total{result="hit_memory"} 1.0' in text
    assert f"edge_bytes_sent_total {float(len(data) + 10)}" in text
    assert "edge_origin_fetches_total 1.0" in text
    assert "edge_cache_memory_bytes 100000.0" in text
