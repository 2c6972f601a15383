"""common.http_plan: one table for every answer the origin and the edge plan, then the parts.

The table drives :func:`plan_response` directly; the tests after it check the
helpers (Range parser, HTTP-date parser) and that the origin and the edge, over
HTTP, give the same status and planned headers for the same requests.
"""

from __future__ import annotations

import asyncio
import functools
import os
from datetime import UTC, datetime

import pytest

from common.http_plan import (
    NO_CONDITIONS,
    UNSATISFIABLE,
    Conditionals,
    Plan,
    Representation,
    parse_http_date,
    parse_range,
    plan_response,
    read_conditionals,
)

SIZE = 1000
ETAG = '"abc"'
LM = "Thu, 26 Nov 2026 10:00:00 GMT"
EARLIER = "Wed, 25 Nov 2026 10:00:00 GMT"
LATER = "Fri, 27 Nov 2026 10:00:00 GMT"
LM_850 = "Thursday, 26-Nov-26 10:00:00 GMT"
LM_ASCTIME = "Thu Nov 26 10:00:00 2026"
REP = Representation(SIZE, ETAG, datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC))
WHOLE = (0, SIZE - 1)

# Request header names, short for the table.
R, IR, INM, IMS = "range", "if-range", "if-none-match", "if-modified-since"
IM, IUS = "if-match", "if-unmodified-since"

# (id, method, request headers, status, the range of a 206 as (first, last))
CASES = [
    # plain
    ("get", "GET", {}, 200, None),
    ("head", "HEAD", {}, 200, None),
    # single ranges
    ("range", "GET", {R: "bytes=0-99"}, 206, (0, 99)),
    ("range-one-byte", "GET", {R: "bytes=999-999"}, 206, (999, 999)),
    ("range-open-ended", "GET", {R: "bytes=900-"}, 206, (900, 999)),
    ("range-suffix", "GET", {R: "bytes=-100"}, 206, (900, 999)),
    ("range-suffix-too-long", "GET", {R: "bytes=-5000"}, 206, (0, 999)),
    ("range-end-past-size", "GET", {R: "bytes=990-5000"}, 206, (990, 999)),
    ("range-spaces-and-case", "GET", {R: "BYTES = 1-2"}, 206, (1, 2)),
    ("range-head", "HEAD", {R: "bytes=-10"}, 206, (990, 999)),
    ("range-start-at-size", "GET", {R: "bytes=1000-"}, 416, None),
    ("range-start-past-size", "GET", {R: "bytes=5000-6000"}, 416, None),
    ("range-empty-suffix", "GET", {R: "bytes=-0"}, 416, None),
    ("range-unsatisfiable-head", "HEAD", {R: "bytes=1000-"}, 416, None),
    ("range-malformed", "GET", {R: "bytes=abc"}, 200, None),
    ("range-reversed", "GET", {R: "bytes=5-2"}, 200, None),
    ("range-non-ascii-digit", "GET", {R: "bytes=²-3"}, 200, None),
    ("range-multi", "GET", {R: "bytes=0-1,5-6"}, 200, None),
    ("range-other-unit", "GET", {R: "items=0-1"}, 200, None),
    # If-Range
    ("if-range-etag", "GET", {R: "bytes=0-9", IR: ETAG}, 206, (0, 9)),
    ("if-range-stale-etag", "GET", {R: "bytes=0-9", IR: '"old"'}, 200, None),
    ("if-range-weak-etag", "GET", {R: "bytes=0-9", IR: 'W/"abc"'}, 200, None),
    ("if-range-date", "GET", {R: "bytes=0-9", IR: LM}, 206, (0, 9)),
    ("if-range-date-rfc850", "GET", {R: "bytes=0-9", IR: LM_850}, 206, (0, 9)),
    ("if-range-date-asctime", "GET", {R: "bytes=0-9", IR: LM_ASCTIME}, 206, (0, 9)),
    ("if-range-earlier-date", "GET", {R: "bytes=0-9", IR: EARLIER}, 200, None),
    ("if-range-later-date", "GET", {R: "bytes=0-9", IR: LATER}, 200, None),
    ("if-range-garbage", "GET", {R: "bytes=0-9", IR: "yesterday"}, 200, None),
    ("if-range-without-range", "GET", {IR: '"old"'}, 200, None),
    ("if-range-stale-skips-416", "GET", {R: "bytes=5000-", IR: '"old"'}, 200, None),
    # If-None-Match (weak comparison)
    ("inm-match", "GET", {INM: ETAG}, 304, None),
    ("inm-weak-matches-strong", "GET", {INM: 'W/"abc"'}, 304, None),
    ("inm-list", "GET", {INM: '"x", W/"y",  "abc"'}, 304, None),
    ("inm-star", "GET", {INM: "*"}, 304, None),
    ("inm-other", "GET", {INM: '"other"'}, 200, None),
    ("inm-substring", "GET", {INM: '"abcd", "ab"'}, 200, None),
    ("inm-unquoted", "GET", {INM: "abc"}, 200, None),
    ("inm-head", "HEAD", {INM: ETAG}, 304, None),
    ("inm-beats-range", "GET", {R: "bytes=0-9", INM: ETAG}, 304, None),
    ("inm-beats-416", "GET", {R: "bytes=5000-", INM: ETAG}, 304, None),
    ("inm-miss-then-range", "GET", {R: "bytes=0-9", INM: '"x"'}, 206, (0, 9)),
    # If-Modified-Since
    ("ims-same", "GET", {IMS: LM}, 304, None),
    ("ims-later", "GET", {IMS: LATER}, 304, None),
    ("ims-earlier", "GET", {IMS: EARLIER}, 200, None),
    ("ims-rfc850", "GET", {IMS: LM_850}, 304, None),
    ("ims-asctime", "HEAD", {IMS: LM_ASCTIME}, 304, None),
    ("ims-garbage", "GET", {IMS: "not a date"}, 200, None),
    ("ims-iso", "GET", {IMS: "2026-11-27T10:00:00Z"}, 200, None),
    ("ims-list", "GET", {IMS: f"{LATER}, {LATER}"}, 200, None),
    ("ims-lowercase", "GET", {IMS: LATER.lower()}, 200, None),
    ("ims-bad-hour", "GET", {IMS: "Fri, 27 Nov 2026 25:00:00 GMT"}, 200, None),
    # a string compare would say "Wed..." < "Thu...": it is a later date
    ("ims-later-sorting-lower", "GET", {IMS: "Wed, 02 Dec 2026 10:00:00 GMT"}, 304, None),
    ("ims-with-range", "GET", {R: "bytes=0-9", IMS: EARLIER}, 206, (0, 9)),
    # precedence: If-None-Match decides alone when present
    ("inm-miss-ignores-ims", "GET", {INM: '"x"', IMS: LATER}, 200, None),
    ("inm-match-ignores-ims", "GET", {INM: ETAG, IMS: EARLIER}, 304, None),
    # If-Match (strong comparison) and If-Unmodified-Since: 412 before anything else
    ("im-match", "GET", {IM: ETAG}, 200, None),
    ("im-list", "GET", {IM: '"x", "abc"'}, 200, None),
    ("im-star", "GET", {IM: "*"}, 200, None),
    ("im-other", "GET", {IM: '"x"'}, 412, None),
    ("im-weak", "GET", {IM: 'W/"abc"'}, 412, None),
    ("im-beats-inm", "GET", {IM: '"x"', INM: ETAG}, 412, None),
    ("im-beats-416", "GET", {IM: '"x"', R: "bytes=5000-"}, 412, None),
    ("im-then-range", "GET", {IM: ETAG, R: "bytes=0-9"}, 206, (0, 9)),
    ("ius-later", "GET", {IUS: LATER}, 200, None),
    ("ius-same", "GET", {IUS: LM}, 200, None),
    ("ius-earlier", "GET", {IUS: EARLIER}, 412, None),
    ("ius-garbage", "GET", {IUS: "soon"}, 200, None),
    ("im-match-ignores-ius", "GET", {IM: ETAG, IUS: EARLIER}, 200, None),
    ("ius-ok-then-inm", "GET", {IUS: LATER, INM: "*"}, 304, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "headers", "status", "sent_range"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_plan_response(method, headers, status, sent_range):
    plan = plan_response(REP, method, headers.get(R), read_conditionals(headers))
    assert plan.status == status
    validators = {b"etag": ETAG.encode(), b"last-modified": LM.encode()}
    got = dict(plan.headers)
    if status == 200:
        assert plan.span == (None if method == "HEAD" else WHOLE)
        assert got == {**validators, b"accept-ranges": b"bytes", b"content-length": b"1000"}
    elif status == 206:
        first, last = sent_range
        assert plan.span == (None if method == "HEAD" else sent_range)
        assert got == {
            **validators,
            b"accept-ranges": b"bytes",
            b"content-length": b"%d" % (last - first + 1),
            b"content-range": b"bytes %d-%d/1000" % (first, last),
        }
    else:
        assert plan.span is None
        if status == 304:
            assert got == validators
        elif status == 416:
            assert got == {b"content-range": b"bytes */1000"}
        else:
            assert status == 412 and got == {}


def test_the_table_is_wide_enough():
    assert len(CASES) >= 30
    assert {row[3] for row in CASES} == {200, 206, 304, 412, 416}


def test_plans_are_frozen_and_repeatable():
    first = plan_response(REP, "GET", "bytes=0-9")
    assert plan_response(REP, "GET", "bytes=0-9") == first
    assert isinstance(first, Plan) and isinstance(first.headers, tuple)
    with pytest.raises(AttributeError):
        first.status = 200  # type: ignore[misc]
    long_header = "bytes=0-9" + " " * 100
    assert plan_response(REP, "GET", long_header) == first


def test_only_get_and_head():
    with pytest.raises(ValueError):
        plan_response(REP, "POST")


def test_empty_object():
    empty = Representation(0, ETAG)
    assert plan_response(empty, "GET") == Plan(
        200,
        ((b"accept-ranges", b"bytes"), (b"etag", ETAG.encode()), (b"content-length", b"0")),
        (0, -1),
    )
    assert plan_response(empty, "GET", "bytes=0-").status == 416
    assert plan_response(empty, "GET", "bytes=-5").status == 416


def test_weak_own_etag_never_matches_strongly():
    weak = Representation(10, 'W/"abc"')
    assert plan_response(weak, "GET", None, Conditionals(if_none_match='"abc"')).status == 304
    assert plan_response(weak, "GET", None, Conditionals(if_match='W/"abc"')).status == 412
    assert plan_response(weak, "GET", "bytes=0-1", Conditionals(if_range='W/"abc"')).status == 200


def test_without_last_modified_dates_are_ignored():
    bare = Representation(10, ETAG)
    assert b"last-modified" not in dict(plan_response(bare, "GET").headers)
    assert plan_response(bare, "GET", None, Conditionals(if_modified_since=LATER)).status == 200
    assert plan_response(bare, "GET", None, Conditionals(if_unmodified_since=EARLIER)).status == 200
    assert plan_response(bare, "GET", "bytes=0-1", Conditionals(if_range=LM)).status == 200


@pytest.mark.parametrize(
    "last_modified", [LM, 1795687200, 1795687200.9, datetime(2026, 11, 26, 10, 0, 0)]
)
def test_last_modified_as_string_epoch_or_datetime(last_modified):
    rep = Representation(10, ETAG, last_modified)
    assert rep.modified == 1795687200 and rep.last_modified == LM


def test_last_modified_string_is_sent_verbatim():
    rep = Representation(10, ETAG, "whenever")
    assert dict(plan_response(rep, "GET").headers)[b"last-modified"] == b"whenever"
    assert plan_response(rep, "GET", None, Conditionals(if_modified_since=LATER)).status == 200


def test_read_conditionals():
    assert read_conditionals({}) is NO_CONDITIONS
    assert read_conditionals({"range": "bytes=0-1"}) is NO_CONDITIONS
    assert read_conditionals({"if-none-match": ETAG}) == Conditionals(if_none_match=ETAG)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("", 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-9", 10, (0, 9)),
        ("bytes=9-9", 10, (9, 9)),
        ("BYTES = 1-2", 10, (1, 2)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=10-20", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=-5", 0, UNSATISFIABLE),
        ("bytes", 10, None),
        ("bytes=", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1-2-3", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=²-3", 10, None),
        ("items=0-1", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("bytes=99999999999999999999-", 10, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777),
        ("  Sun, 06 Nov 1994 08:49:37 GMT ", 784111777),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777),
        ("Sun Nov  6 08:49:37 1994", 784111777),
        ("Sun, 06 Nov 1994 08:49:37 +0000", None),
        ("Sun, 31 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 08:49:37", None),
        ("1994-11-06T08:49:37Z", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_http_date(value, expected):
    assert parse_http_date(value) == expected


# -- the origin and the edge, over HTTP --------------------------------------------------

OBJECT_KEY = "tracks/t1/0123456789abcdef/160.ogg"
PULL = "pull-" + "p" * 40
PLANNED = ("accept-ranges", "content-length", "content-range", "etag", "last-modified")
# Where the edge answers from: a memory hit, a disk hit, or a fill from the origin.
SERVERS = ("origin", "edge-memory", "edge-disk", "edge-fill")


def expected_headers(method, status, sent_range, etag) -> dict[str, str]:
    """The planned headers of an answer (what origin and edge must both send)."""
    validators = {"etag": etag, "last-modified": LM}
    if status == 200:
        return {**validators, "accept-ranges": "bytes", "content-length": str(SIZE)}
    if status == 206:
        first, last = sent_range
        return {
            **validators,
            "accept-ranges": "bytes",
            "content-length": str(last - first + 1),
            "content-range": f"bytes {first}-{last}/{SIZE}",
        }
    if status == 304:
        return validators
    if status == 416:
        return {"content-range": f"bytes */{SIZE}"}
    return {}


@pytest.fixture
async def ask(request, tmp_path):
    """``(ask(method, headers), data)``: one server (the param) holding one SIZE-byte object."""
    import httpx

    from common.signing_keys import eddsa_signing_key, ensure_dev_keypair
    from edge.app import create_app as create_edge
    from edge.settings import EdgeSettings
    from edge.token import sign_stream_token
    from origin.local import LocalStore
    from origin.server import create_app as create_origin

    store = LocalStore(tmp_path / "store")
    data = (bytes(range(256)) * 4)[:SIZE]
    store.put_bytes(OBJECT_KEY, data)
    moment = parse_http_date(LM)
    os.utime(store.root / OBJECT_KEY, (moment, moment))  # Last-Modified: LM
    origin = create_origin(store, [PULL])
    private, public = ensure_dev_keypair(tmp_path / "keys")
    signing_key = eddsa_signing_key(private.read_bytes())
    target = "/" + OBJECT_KEY
    server = request.param
    caches = iter(range(1000))

    def edge(**overrides):
        settings = EdgeSettings(
            upstream="http://origin.test",
            token_public_keys=str(public),
            cache_dir=tmp_path / f"cache-{next(caches)}",
            access_log="off",
            pull_token=PULL,
            upstream_backoff_s=0.0,
            dev_mode=False,
            **overrides,
        )
        return create_edge(settings, transport=httpx.ASGITransport(app=origin))

    async def call(app, method, headers):
        if app is origin:
            url, headers = target, {**headers, "authorization": f"Bearer {PULL}"}
        else:
            token = sign_stream_token(target, key=signing_key, ttl_s=600, sub="user-1")
            url = f"{target}?token={token}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            r = await client.request(method, url, headers=headers)
        if app is not origin and r.status_code in (200, 206, 304):
            assert r.headers["x-cache"] == ("MISS" if server == "edge-fill" else "HIT")
        return r

    if server == "edge-fill":

        async def ask_cold(method, headers):  # a cold edge each time: answered by the fill
            app = edge()
            async with app.running():
                r = await call(app, method, headers)
                for _ in range(500):  # let the fill finish (a bodyless answer does not wait)
                    if not len(app.fills):
                        break
                    await asyncio.sleep(0.01)
                return r

        yield ask_cold, data
        return
    if server == "origin":
        yield functools.partial(call, origin), data
        return
    # A memory hit, or (objects over half the size kept on disk only) a disk hit.
    app = edge() if server == "edge-memory" else edge(cache_memory_max_object_bytes=SIZE // 2)
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            token = sign_stream_token(target, key=signing_key, ttl_s=600, sub="user-1")
            warm = await client.get(f"{target}?token={token}")
        assert warm.status_code == 200 and warm.content == data
        yield functools.partial(call, app), data


@pytest.mark.anyio
@pytest.mark.parametrize("ask", SERVERS, indirect=True)
async def test_origin_and_edge_answer_alike(ask):
    """Every row of the table, over HTTP: same status, planned headers and bytes everywhere."""
    ask_one, data = ask
    etag = (await ask_one("HEAD", {})).headers["etag"]
    assert etag.startswith('"') and etag != ETAG
    wrong = []
    for name, method, headers, status, sent_range in CASES:
        sent = {k: v.replace(ETAG, etag).encode("latin-1") for k, v in headers.items()}
        r = await ask_one(method, sent)
        planned = {k: r.headers[k] for k in PLANNED if k in r.headers}
        if r.status_code not in (200, 206):
            planned.pop("content-length", None)  # an error body's, or none
        want = expected_headers(method, status, sent_range, etag)
        if r.status_code != status or planned != want:
            wrong.append((name, r.status_code, planned, status, want))
            continue
        if method == "HEAD" or status in (304, 412, 416):
            body = b"" if method == "HEAD" or status == 304 else None
            if body is not None:
                assert r.content == body, name
            else:
                assert r.json()["error"]["code"] == (
                    "precondition_failed" if status == 412 else "range_not_satisfiable"
                ), name
        else:
            first, last = sent_range or WHOLE
            assert r.content == data[first : last + 1], name
    assert wrong == []
