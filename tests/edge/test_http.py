"""HTTP semantics: pure planning functions, then the same behaviour through the app."""

from __future__ import annotations

import json

import pytest

from edge.access_log import AccessLog
from edge.http import etag_matches_any, if_range_matches, plan_response
from tests.edge.conftest import KEY, access_lines, call_raw, put_random, serving

ETAG = '"abc"'
LM = "Thu, 26 Nov 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("range_h", "inm", "if_range", "expected"),
    [
        (None, None, None, (200, 0, 999)),
        ("bytes=0-99", None, None, (206, 0, 99)),
        ("bytes=900-", None, None, (206, 900, 999)),
        ("bytes=-100", None, None, (206, 900, 999)),
        ("bytes=-5000", None, None, (206, 0, 999)),
        ("bytes=990-5000", None, None, (206, 990, 999)),
        ("bytes=1000-", None, None, (416, 0, -1)),
        ("bytes=-0", None, None, (416, 0, -1)),
        ("bytes=abc", None, None, (200, 0, 999)),  # malformed: ignored
        ("bytes=0-1,5-6", None, None, (200, 0, 999)),  # multi-range: whole object
        ("items=0-1", None, None, (200, 0, 999)),
        (None, ETAG, None, (304, 0, -1)),
        (None, 'W/"abc"', None, (304, 0, -1)),
        (None, '"x", "abc"', None, (304, 0, -1)),
        (None, "*", None, (304, 0, -1)),
        (None, '"other"', None, (200, 0, 999)),
        ("bytes=0-9", ETAG, None, (304, 0, -1)),  # If-None-Match wins over Range
        ("bytes=0-9", None, ETAG, (206, 0, 9)),
        ("bytes=0-9", None, '"stale"', (200, 0, 999)),
        ("bytes=0-9", None, 'W/"abc"', (200, 0, 999)),  # If-Range needs a strong match
        ("bytes=0-9", None, LM, (206, 0, 9)),
        ("bytes=0-9", None, "Wed, 25 Nov 2026 10:00:00 GMT", (200, 0, 999)),
    ],
)
def test_plan_response(range_h, inm, if_range, expected):
    assert plan_response(1000, ETAG, LM, range_h, inm, if_range) == expected


def test_empty_object_has_no_satisfiable_range():
    assert plan_response(0, ETAG, None, None, None, None) == (200, 0, -1)
    assert plan_response(0, ETAG, None, "bytes=0-", None, None)[0] == 416


def test_validator_comparisons():
    assert etag_matches_any('W/"a"', '"a"') and not etag_matches_any('"b"', '"a"')
    assert if_range_matches('"a"', '"a"', None) and not if_range_matches('"a"', 'W/"a"', None)
    assert not if_range_matches(LM, '"a"', None)


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
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag and "cache-control" in not_modified.headers
    assert too_far.status_code == 416
    assert too_far.headers["content-range"] == "bytes */100000"
    assert too_far.json()["error"]["code"] == "range_not_satisfiable"
    assert matching.status_code == 206 and matching.content == data[:10]
    assert stale.status_code == 200 and stale.content == data


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
