"""Byte-exact ranges against the origin object, swept by hypothesis, on every serving path.

* memory: hits served as memoryview slices of the cached bytes
* disk:   memory tier off, hits streamed from the entry file in 1 MiB preads
* fill:   both tiers off, so every request is a fresh whole-object fill and is
          answered by read-while-write from the growing part file
"""

from __future__ import annotations

import os

import anyio.from_thread
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.app import create_app
from tests.edge.conftest import KEY

SIZE = 2_500_000
DATA = os.urandom(SIZE)

offsets = st.one_of(
    st.integers(0, SIZE + 10),
    st.sampled_from([0, 1, 65535, 65536, 262143, 262144, 1048575, 1048576, SIZE - 1, SIZE]),
)
range_specs = st.one_of(
    st.tuples(st.just("closed"), offsets, st.integers(0, 2_000_000)),
    st.tuples(st.just("open"), offsets, st.just(0)),
    st.tuples(st.just("suffix"), st.integers(0, SIZE + 10), st.just(0)),
)


def expected(kind: str, a: int, n: int) -> tuple[int, bytes, str | None]:
    """Independent model of RFC 9110 single-range semantics."""
    if kind == "suffix":
        if a == 0:
            return 416, b"", None
        first = max(0, SIZE - a)
        return 206, DATA[first:], f"bytes {first}-{SIZE - 1}/{SIZE}"
    if a >= SIZE:
        return 416, b"", None
    last = SIZE - 1 if kind == "open" else min(a + n, SIZE - 1)
    return 206, DATA[a : last + 1], f"bytes {a}-{last}/{SIZE}"


def header(kind: str, a: int, n: int) -> str:
    if kind == "suffix":
        return f"bytes=-{a}"
    return f"bytes={a}-" if kind == "open" else f"bytes={a}-{a + n}"


@pytest.fixture(params=["memory", "disk", "fill"])
def served(request, make_settings, store, sign):
    store.put_bytes(KEY, DATA)
    tiers = {
        "memory": {},
        "disk": {"cache_memory_max_bytes": 0, "cache_memory_max_object_bytes": 0},
        "fill": {
            "cache_memory_max_bytes": 0,
            "cache_memory_max_object_bytes": 0,
            "cache_disk_max_bytes": 0,
        },
    }[request.param]
    app = create_app(make_settings(upstream=store.url, access_log="off", **tiers))
    target = f"/{KEY}?token={sign('/' + KEY, ttl=3600)}"
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        portal.call(app.startup)
        client = portal.call(
            lambda: _client(app)  # created inside the portal's event loop
        )
        first = portal.call(client.get, target)
        assert first.status_code == 200 and first.content == DATA
        yield request.param, portal, client, target
        portal.call(client.aclose)
        portal.call(app.shutdown)


async def _client(app):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)), base_url="http://edge"
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spec=range_specs)
def test_ranges_are_byte_exact(served, spec):
    tier, portal, client, target = served
    kind, a, n = spec
    r = portal.call(lambda: client.get(target, headers={"range": header(kind, a, n)}))
    status, body, content_range = expected(kind, a, n)
    assert r.status_code == status, (tier, spec)
    if status == 206:
        assert r.content == body
        assert r.headers["content-range"] == content_range
        assert r.headers["content-length"] == str(len(body))
        # In the fill tier a request may join the fill a previous (416) answer left running.
        allowed = {"MISS", "COALESCED"} if tier == "fill" else {"HIT"}
        assert r.headers["x-cache"] in allowed
    else:
        assert r.headers["content-range"] == f"bytes */{SIZE}"
