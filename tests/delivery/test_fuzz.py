"""Property-based fuzz of the API's parameters: whatever a client sends, never a 5xx."""

from __future__ import annotations

import functools
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # hypothesis fuzzing

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

track_ids = st.one_of(
    st.sampled_from(["sine", "chirp", "noise", "ghost"]),
    st.text(min_size=1, max_size=80),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,70}", fullmatch=True),
)
qualities = st.one_of(
    st.none(), st.sampled_from(["low", "normal", "high", "auto"]), st.text(max_size=20)
)
versions = st.one_of(
    st.none(), st.from_regex(r"[0-9a-f]{16}", fullmatch=True), st.text(max_size=70)
)
junk = st.text(max_size=200)


class PortalClient:
    """Synchronous calls into an httpx ASGI client on one event loop (hypothesis is sync)."""

    def __init__(self, portal, app) -> None:
        self._portal = portal
        # raise_app_exceptions=False: a crash must show up as the 500 a client would get.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://delivery.test")

    def get(self, url, **kw) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.get, url, **kw))

    def put(self, url, **kw) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.put, url, **kw))

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@pytest.fixture
def fuzz_client(make_app):
    with start_blocking_portal() as portal:
        client = PortalClient(portal, make_app(rate_limit_per_s=0))
        try:
            yield client
        finally:
            client.close()


def _auth_header(kind: str, mint, junk_text: str) -> dict[str, str]:
    if kind == "none":
        return {}
    if kind == "junk":
        return {"Authorization": junk_text.encode("ascii", "replace").decode()}
    return {"Authorization": f"Bearer {mint('fuzzer', tier=kind)}"}


def _check(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if 300 <= r.status_code < 400:  # e.g. Starlette's trailing-slash redirect
        assert r.headers["location"]
        return
    body = r.json()
    if r.status_code >= 400:
        assert set(body) == {"error"}
        assert body["error"]["status"] == r.status_code
        assert isinstance(body["error"]["code"], str) and body["error"]["message"]


@FUZZ
@given(
    track_id=track_ids,
    quality=qualities,
    version=versions,
    auth_kind=st.sampled_from(["free", "premium", "none", "junk"]),
    junk_text=junk,
)
def test_stream_never_5xx(fuzz_client, mint, track_id, quality, version, auth_kind, junk_text):
    params = {}
    if quality is not None:
        params["quality"] = quality
    if version is not None:
        params["version"] = version
    r = fuzz_client.get(
        f"/v1/tracks/{quote(track_id, safe='')}/stream",
        params=params,
        headers=_auth_header(auth_kind, mint, junk_text),
    )
    _check(r)
    if r.status_code == 200:
        assert r.json()["track_id"] == track_id


@FUZZ
@given(track_id=track_ids, version=versions, auth_kind=st.sampled_from(["free", "premium", "junk"]))
def test_track_info_never_5xx(fuzz_client, mint, track_id, version, auth_kind):
    params = {"version": version} if version is not None else {}
    r = fuzz_client.get(
        f"/v1/tracks/{quote(track_id, safe='')}",
        params=params,
        headers=_auth_header(auth_kind, mint, "x"),
    )
    _check(r)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


@FUZZ
@given(
    user_id=st.text(min_size=1, max_size=150),
    body=st.one_of(json_values, st.fixed_dictionaries({"tier": st.text(max_size=40)})),
)
def test_admin_never_5xx(fuzz_client, admin_token, user_id, body):
    r = fuzz_client.put(
        f"/v1/admin/users/{quote(user_id, safe='')}/tier",
        json=body,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    _check(r)
