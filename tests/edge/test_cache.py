"""Memory and disk tiers: LRU by bytes, the size bound, restart, crash leftovers, shared locks."""

from __future__ import annotations

import contextlib
import os
import re

import httpx
import pytest

from edge.app import create_app
from edge.cache.disk import DiskCache
from edge.cache.entry import HEADER_SIZE, ObjectMeta, encode_header, entry_name
from edge.cache.memory import CachedObject, MemoryCache
from tests.edge.conftest import serving
from tests.support.waiting import wait_for_async

KEYS = [f"tracks/t{i}/0123456789abcdef/160.ogg" for i in range(10)]


def meta(key: str, size: int) -> ObjectMeta:
    return ObjectMeta(key=key, size=size, etag='"e"', content_type="audio/ogg")


def test_memory_lru_by_bytes():
    cache = MemoryCache(max_bytes=300, max_object_bytes=200)
    for key in KEYS[:3]:
        assert cache.put(CachedObject(meta(key, 100), b"x" * 100))
    assert cache.bytes == 300
    cache.get(KEYS[0])  # now the most recently used
    cache.put(CachedObject(meta(KEYS[3], 150), b"y" * 150))
    assert KEYS[0] in cache and KEYS[1] not in cache and KEYS[2] not in cache
    assert cache.bytes == 250 <= cache.max_bytes and cache.evictions == 2
    assert not cache.put(CachedObject(meta(KEYS[4], 201), b"z" * 201))  # too large for memory
    assert KEYS[4] not in cache


def test_cached_object_refuses_a_size_mismatch():
    with pytest.raises(ValueError):
        CachedObject(meta(KEYS[0], 10), b"short")


def write_entry(disk: DiskCache, key: str, data: bytes) -> str:
    name = entry_name(key)
    path = disk.object_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(encode_header(meta(key, len(data))) + data)
    return path


def test_disk_start_drops_invalid_entries_and_stale_fills(tmp_path):
    disk = DiskCache(tmp_path / "c", max_bytes=10_000_000)
    disk.start()
    good = write_entry(disk, KEYS[0], b"a" * 1000)
    truncated = write_entry(disk, KEYS[1], b"b" * 1000)
    with open(truncated, "r+b") as fh:
        fh.truncate(HEADER_SIZE + 10)
    misnamed = disk.object_path("f" * 64)
    os.makedirs(os.path.dirname(misnamed), exist_ok=True)
    with open(misnamed, "wb") as fh:
        fh.write(encode_header(meta(KEYS[2], 3)) + b"abc")
    stale_part = disk.part_path(entry_name(KEYS[3]))
    with open(stale_part, "wb") as fh:
        fh.write(b"partial")
    held = disk.try_lock(entry_name(KEYS[4]))  # a live fill in another "process"
    live_part = disk.part_path(entry_name(KEYS[4]))
    with open(live_part, "wb") as fh:
        fh.write(b"growing")

    DiskCache(tmp_path / "c", max_bytes=10_000_000).start()

    assert os.path.exists(good)
    assert not os.path.exists(truncated) and not os.path.exists(misnamed)
    assert not os.path.exists(stale_part)
    assert os.path.exists(live_part)  # its lock is held: not ours to delete
    disk.unlock(held)


def test_disk_bound_evicts_least_recently_used(tmp_path):
    entry_size = HEADER_SIZE + 1000
    disk = DiskCache(tmp_path / "c", max_bytes=3 * entry_size)
    disk.start()
    paths = []
    for i, key in enumerate(KEYS[:5]):
        paths.append(write_entry(disk, key, bytes([i]) * 1000))
        os.utime(paths[-1], (1000 + i, 1000 + i))
    os.utime(paths[0], (5000, 5000))  # touched recently: survives
    disk.enforce_bound()
    left = {p for p in paths if os.path.exists(p)}
    assert left == {paths[0], paths[3], paths[4]}
    assert disk.bytes == 3 * entry_size <= disk.max_bytes and disk.entries == 3
    assert disk.evictions == 2


def test_fill_locks_exclude_each_other_like_separate_processes(tmp_path):
    a = DiskCache(tmp_path / "c", max_bytes=1 << 20)
    a.start()
    b = DiskCache(tmp_path / "c", max_bytes=1 << 20)
    name = entry_name(KEYS[0])
    first = a.try_lock(name)
    assert first is not None and b.try_lock(name) is None
    a.unlock(first)
    second = b.try_lock(name)
    assert second is not None
    b.unlock(second)


@pytest.mark.anyio
async def test_eviction_keeps_the_size_bound_while_serving(store_edge, store, url, tmp_path):
    size = 40_000
    objects = {k: os.urandom(size) for k in KEYS}
    for k, v in objects.items():
        store.put_bytes(k, v)
    bound = 3 * (HEADER_SIZE + size) + 100
    app = store_edge(cache_disk_max_bytes=bound, cache_memory_max_bytes=0,
                     cache_memory_max_object_bytes=0)  # fmt: skip
    objects_dir = tmp_path / "cache" / "objects"

    def on_disk() -> int:
        total = 0
        for p in objects_dir.rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # evicted while we walk
                total += p.stat().st_size if p.is_file() else 0
        return total

    async with serving(app) as client:
        for k in KEYS:
            r = await client.get(url(k))
            assert r.status_code == 200 and r.content == objects[k]
            # Eviction runs in the background once an entry is published.
            await wait_for_async(
                lambda: on_disk() <= bound,
                what="eviction to bring the disk tier within its bound",
                detail=lambda: f"{on_disk()} bytes on disk, bound {bound}",
            )
        # The most recent entries are there; older ones were evicted and come back as misses.
        assert (await client.get(url(KEYS[-1]))).headers["x-cache"] == "HIT"
        again = await client.get(url(KEYS[0]))
        metrics = (await client.get("/metrics")).text
    assert again.headers["x-cache"] == "MISS" and again.content == objects[KEYS[0]]
    evicted = re.search(r'^edge_cache_evictions_total\{tier="disk"\} (\S+)$', metrics, re.M)
    assert evicted and float(evicted[1]) >= len(KEYS) - 3


@pytest.mark.anyio
async def test_restart_keeps_the_disk_cache_in_process(make_settings, store, url):
    data = os.urandom(50_000)
    store.put_bytes(KEYS[0], data)
    async with serving(create_app(make_settings(upstream=store.url))) as client:
        assert (await client.get(url(KEYS[0]))).headers["x-cache"] == "MISS"

    def dead(request):
        raise httpx.ConnectError("origin is gone", request=request)

    restarted = create_app(make_settings(), transport=httpx.MockTransport(dead))
    async with serving(restarted) as client:
        r = await client.get(url(KEYS[0]), headers={"range": "bytes=5-9"})
    assert r.status_code == 206 and r.headers["x-cache"] == "HIT" and r.content == data[5:10]
    assert restarted.stats.hits_disk == 1


@pytest.mark.anyio
async def test_large_objects_stream_from_disk_without_entering_memory(store_edge, store, url):
    data = os.urandom(3_000_000)
    store.put_bytes(KEYS[0], data)
    app = store_edge(cache_memory_max_object_bytes=1_000_000, cache_memory_max_bytes=2_000_000)
    async with serving(app) as client:
        await client.get(url(KEYS[0]))
        full = await client.get(url(KEYS[0]))
        part = await client.get(url(KEYS[0]), headers={"range": "bytes=1048570-2097160"})
    assert full.headers["x-cache"] == "HIT" and full.content == data
    assert part.status_code == 206 and part.content == data[1048570:2097161]
    assert len(app.memory) == 0 and app.stats.hits_disk == 2
