"""TrackResolver: latest.json -> manifest through the store, cached, single-flight, pins.

Nothing here waits on the wall clock: TTLs run on an injected clock and overlapping
callers are lined up with :func:`anyio.wait_all_tasks_blocked`."""

from __future__ import annotations

import threading

import anyio
import pytest

from delivery.resolver import (
    CatalogUnavailable,
    InvalidTrackId,
    InvalidVersion,
    ManifestInvalid,
    TrackNotFound,
    TrackResolver,
    VersionNotFound,
)
from origin.errors import StoreUnavailable
from origin.local import LocalStore
from origin.manifest import Latest
from origin.store import open_store
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio


class CountingStore:
    """A real store with reads counted, optionally held at a gate (to make callers overlap)."""

    def __init__(self, inner, gate: threading.Event | None = None, fail: bool = False) -> None:
        self._inner = inner
        self.url = inner.url
        self.reads: list[str] = []
        self.gate = gate
        self.fail = fail

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise StoreUnavailable("injected outage")
        return self._inner.get_bytes(key)

    def exists(self, key: str) -> bool:
        return self._inner.exists(key)


async def test_resolves_the_latest_version(media_catalog):
    resolver = TrackResolver(open_store(media_catalog.url))
    track = await resolver.track("sine")
    assert track.version == media_catalog.latest("sine")
    assert track.bitrates == (96, 160, 320)
    assert track.renditions[160].key == f"tracks/sine/{track.version}/160.ogg"
    assert track.published_at is not None
    assert track.duration_s > 1.5


async def test_a_burst_reads_the_store_once(media_catalog):
    gate = threading.Event()
    store = CountingStore(open_store(media_catalog.url), gate)
    resolver = TrackResolver(store)
    results = []

    async def ask() -> None:
        results.append(await resolver.track("noise"))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()  # all 50 queued behind the first read
        gate.set()
    assert len(results) == 50
    assert {r.version for r in results} == {media_catalog.latest("noise")}
    assert store.reads == [
        "tracks/noise/latest.json",
        f"tracks/noise/{results[0].version}/manifest.json",
    ]
    await resolver.track("noise")
    assert len(store.reads) == 2  # cached


async def test_latest_is_refreshed_after_the_ttl(tmp_path, media_catalog):
    source = open_store(media_catalog.url)
    local = LocalStore(tmp_path / "s")
    old, new = media_catalog.versions["sine"]
    for v in (old, new):
        key = f"tracks/sine/{v}/manifest.json"
        local.put_bytes(key, source.get_bytes(key))
    local.put_bytes("tracks/sine/latest.json", Latest.now(old).to_json())
    clock = FakeClock()
    resolver = TrackResolver(local, ttl_s=30, clock=clock)
    assert (await resolver.track("sine")).version == old
    local.put_bytes("tracks/sine/latest.json", Latest.now(new).to_json())
    clock.now = 29
    assert (await resolver.track("sine")).version == old
    clock.now = 31
    assert (await resolver.track("sine")).version == new


async def test_missing_tracks_are_cached_briefly(media_catalog):
    clock = FakeClock()
    store = CountingStore(open_store(media_catalog.url))
    resolver = TrackResolver(store, negative_ttl_s=5, clock=clock)
    for _ in range(10):
        with pytest.raises(TrackNotFound):
            await resolver.track("ghost")
    assert store.reads == ["tracks/ghost/latest.json"]
    clock.now = 6
    with pytest.raises(TrackNotFound):
        await resolver.track("ghost")
    assert len(store.reads) == 2


async def test_pinned_versions(media_catalog):
    resolver = TrackResolver(open_store(media_catalog.url))
    old, new = media_catalog.versions["sine"]
    assert (await resolver.track("sine", old)).version == old
    assert (await resolver.track("sine", new)).version == new
    with pytest.raises(VersionNotFound):
        await resolver.track("sine", "ffffffffffffffff")
    with pytest.raises(TrackNotFound):
        await resolver.track("ghost", "ffffffffffffffff")


@pytest.mark.parametrize("track_id", ["", "../x", "a/b", "-a", "x" * 65, "a\x00"])
async def test_invalid_ids_never_reach_the_store(media_catalog, track_id):
    store = CountingStore(open_store(media_catalog.url))
    with pytest.raises(InvalidTrackId):
        await TrackResolver(store).track(track_id)
    assert store.reads == []


@pytest.mark.parametrize("version", ["", "FFFFFFFFFFFFFFFF", "123", "../../../../etc/pa"])
async def test_invalid_versions(media_catalog, version):
    with pytest.raises(InvalidVersion):
        await TrackResolver(open_store(media_catalog.url)).track("sine", version)


async def test_store_outage_is_503_and_not_cached(media_catalog):
    store = CountingStore(open_store(media_catalog.url), fail=True)
    resolver = TrackResolver(store)
    with pytest.raises(CatalogUnavailable) as err:
        await resolver.track("sine")
    assert err.value.status == 503
    store.fail = False
    assert (await resolver.track("sine")).version == media_catalog.latest("sine")


async def test_corrupt_objects_are_502(tmp_path):
    store = LocalStore(tmp_path / "s")
    store.put_bytes("tracks/bad/latest.json", b"{not json")
    with pytest.raises(ManifestInvalid):
        await TrackResolver(store).track("bad")
    store.put_bytes("tracks/dangling/latest.json", Latest.now("0123456789abcdef").to_json())
    with pytest.raises(ManifestInvalid, match="missing"):
        await TrackResolver(store).track("dangling")
    store.put_bytes("tracks/bad2/latest.json", Latest.now("0123456789abcdef").to_json())
    store.put_bytes("tracks/bad2/0123456789abcdef/manifest.json", b'{"schema": 1}')
    with pytest.raises(ManifestInvalid):
        await TrackResolver(store).track("bad2")


async def test_api_maps_catalog_errors(make_app, auth, tmp_path):
    from tests.delivery.conftest import client_for

    store = LocalStore(tmp_path / "s")
    store.put_bytes("tracks/bad/latest.json", b"{not json")
    app = make_app(store=store.url)
    async with client_for(app) as c:
        r = await c.get("/v1/tracks/bad/stream", headers=auth())
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "manifest_invalid"


async def test_a_published_event_makes_the_new_version_visible_at_once(
    make_app, auth, admin_token, tmp_path, media_catalog
):
    """``encoder ingest --notify`` -> POST /v1/admin/events -> the resolver forgets latest.json."""
    from tests.delivery.conftest import client_for

    source = open_store(media_catalog.url)
    local = LocalStore(tmp_path / "s")
    old, new = media_catalog.versions["sine"]
    for v in (old, new):
        for key in source.list(f"tracks/sine/{v}/"):
            local.put_bytes(key, source.get_bytes(key))
    local.put_bytes("tracks/sine/latest.json", Latest.now(old).to_json())
    app = make_app(store=local.url, catalog_ttl_s=3600)
    async with client_for(app) as c:
        assert (await c.get("/v1/tracks/sine/stream", headers=auth())).json()["version"] == old
        local.put_bytes("tracks/sine/latest.json", Latest.now(new).to_json())
        assert (await c.get("/v1/tracks/sine/stream", headers=auth())).json()["version"] == old
        r = await c.post(
            "/v1/admin/events",
            json={"event": "track.published", "track_id": "sine", "version": new},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert r.status_code < 300, r.text
        assert (await c.get("/v1/tracks/sine/stream", headers=auth())).json()["version"] == new
