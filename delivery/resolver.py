"""The track resolver: a track id (and optional pinned version) to its published
:class:`Track`, read through origin's manifest reader (``latest.json``, then the
manifest it names) and cached.

* ``latest.json`` is cached for ``DELIVERY_CATALOG_TTL_S`` (a new version
  shows up within that time); "no such track" for ``..._NEGATIVE_TTL_S`` so a
  flood of requests for a missing id does not become a flood of store reads.
* Manifests are cached without expiry (LRU): objects under a version never
  change once the manifest exists (docs/architecture.md).
* Single-flight: concurrent misses for the same key share ONE store read, so a
  burst of listeners for a newly published track reads the store once.

Store I/O is blocking (boto3, google, files), so it runs in a worker thread;
the caches are only touched on the event loop (cachetools is not thread-safe).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from cachetools import LRUCache, TTLCache

from common.singleflight import SingleFlight
from delivery.errors import ApiError
from origin import errors as store_errors
from origin.errors import ManifestError, StoreError, StoreUnavailable
from origin.keys import latest_key, validate_track_id, validate_version
from origin.manifest import Latest, Manifest, Rendition, read_latest, read_manifest
from origin.store import ObjectStore

T = TypeVar("T")


class TrackNotFound(ApiError):
    status, code = 404, "track_not_found"


class VersionNotFound(ApiError):
    status, code = 404, "version_not_found"


class InvalidTrackId(ApiError):
    status, code = 400, "invalid_track_id"


class InvalidVersion(ApiError):
    status, code = 400, "invalid_version"


class CatalogUnavailable(ApiError):
    status, code = 503, "catalog_unavailable"


class ManifestInvalid(ApiError):
    status, code = 502, "manifest_invalid"


@dataclass(frozen=True, slots=True)
class Track:
    """One published version of a track, with what the hot path needs precomputed."""

    manifest: Manifest
    published_at: str | None
    renditions: dict[int, Rendition] = field(default_factory=dict)
    bitrates: tuple[int, ...] = ()
    duration_s: float = 0.0
    loudness: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Manifest, published_at: str | None = None) -> Track:
        return cls(
            manifest=manifest,
            published_at=published_at,
            renditions={r.bitrate_kbps: r for r in manifest.renditions},
            bitrates=tuple(manifest.bitrates),
            duration_s=round(manifest.duration_s, 3),
            loudness=manifest.loudness.model_dump(mode="json"),
        )

    @property
    def track_id(self) -> str:
        return self.manifest.track_id

    @property
    def version(self) -> str:
        return self.manifest.version


def check_track_id(track_id: str) -> str:
    try:
        return validate_track_id(track_id)
    except ValueError as exc:
        raise InvalidTrackId(str(exc)) from None


def check_version(version: str) -> str:
    try:
        return validate_version(version)
    except ValueError as exc:
        raise InvalidVersion(str(exc)) from None


class TrackResolver:
    """Resolve a track id (and optional pinned version) to a :class:`Track`."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        maxsize: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        on_store_read: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._on_store_read = on_store_read
        self._latest: TTLCache[str, Latest] | None = (
            TTLCache(maxsize, ttl_s, timer=clock) if ttl_s > 0 else None
        )
        self._missing: TTLCache[Any, bool] | None = (
            TTLCache(maxsize, negative_ttl_s, timer=clock) if negative_ttl_s > 0 else None
        )
        self._tracks: LRUCache[tuple[str, str], Track] = LRUCache(maxsize)
        self._flights = SingleFlight()
        # Track ids to drop from the caches, queued from any thread (deque appends are
        # atomic) and applied on the event loop, the only place the caches are touched.
        self._to_forget: deque[str] = deque()
        self.store_reads = 0

    # -- public -----------------------------------------------------------------------

    async def track(self, track_id: str, version: str | None = None) -> Track:
        if self._to_forget:
            self._apply_forgets()
        check_track_id(track_id)
        if version is not None:
            check_version(version)
            return await self._pinned(track_id, version)
        latest = None
        if self._latest is not None:
            try:
                latest = self._latest[track_id]  # a third of the cost of .get() on a TTLCache
            except KeyError:
                pass
        if latest is None:
            if self._missing is not None and track_id in self._missing:
                raise TrackNotFound(f"no track {track_id!r}")
            try:
                latest = await self._once(("latest", track_id), self._read_latest, track_id)
            except TrackNotFound:
                if self._missing is not None:
                    self._missing[track_id] = True
                raise
            if self._latest is not None:
                self._latest[track_id] = latest
        cached = self._tracks.get((track_id, latest.version))  # the hot path, inline
        if cached is not None:
            return cached
        return await self._version(track_id, latest.version, latest.published_at, pinned=False)

    def forget(self, track_id: str) -> None:
        """Drop the cached ``latest.json`` of ``track_id`` (a new version was published).

        Safe from any thread; takes effect at the next lookup.
        """
        self._to_forget.append(track_id)

    def _apply_forgets(self) -> None:
        while self._to_forget:
            track_id = self._to_forget.popleft()
            if self._latest is not None:
                self._latest.pop(track_id, None)
            if self._missing is not None:
                self._missing.pop(track_id, None)
                # ... and "no such version" of it (a pinned version published since).
                for key in [k for k in self._missing if isinstance(k, tuple) and k[0] == track_id]:
                    self._missing.pop(key, None)

    # -- internals --------------------------------------------------------------------

    async def _pinned(self, track_id: str, version: str) -> Track:
        if self._missing is not None and (track_id, version) in self._missing:
            raise VersionNotFound(f"track {track_id!r} has no version {version!r}")
        try:
            return await self._version(track_id, version, None, pinned=True)
        except VersionNotFound:
            if self._missing is not None:
                self._missing[(track_id, version)] = True
            raise

    async def _version(
        self, track_id: str, version: str, published_at: str | None, *, pinned: bool
    ) -> Track:
        cached = self._tracks.get((track_id, version))
        if cached is not None:
            return cached
        manifest = await self._once(
            ("manifest", track_id, version), self._read_manifest, track_id, version, pinned
        )
        track = Track.of(manifest, published_at)
        self._tracks[(track_id, version)] = track
        return track

    async def _once(self, key: Any, load: Callable[..., T], *args: Any) -> T:
        """Run ``load(*args)`` in a thread, sharing one run among concurrent callers."""
        return await self._flights.run(key, lambda: anyio.to_thread.run_sync(load, *args))

    def _count_store_read(self) -> None:
        self.store_reads += 1
        if self._on_store_read is not None:
            self._on_store_read()

    def _read_latest(self, track_id: str) -> Latest:
        self._count_store_read()
        try:
            return read_latest(self.store, track_id)
        except store_errors.TrackNotFound:
            raise TrackNotFound(f"no track {track_id!r}") from None
        except StoreError as exc:
            raise _api_error(exc) from None

    def _read_manifest(self, track_id: str, version: str, pinned: bool) -> Manifest:
        self._count_store_read()
        try:
            return read_manifest(self.store, track_id, version, named_by_latest=not pinned)
        except store_errors.VersionNotFound:  # pinned: which of the two is missing?
            try:
                known = self.store.exists(latest_key(track_id))
            except StoreError as exc:
                raise _api_error(exc) from None
            if not known:
                raise TrackNotFound(f"no track {track_id!r}") from None
            raise VersionNotFound(f"track {track_id!r} has no version {version!r}") from None
        except StoreError as exc:
            raise _api_error(exc) from None


def _api_error(exc: StoreError) -> ApiError:
    """What the manifest reader raised (origin's error tree), as an API answer."""
    if isinstance(exc, ManifestError):
        return ManifestInvalid(str(exc))
    if isinstance(exc, StoreUnavailable):
        return CatalogUnavailable(f"the catalog store is unavailable: {exc}")
    return CatalogUnavailable(f"the catalog store failed: {exc}")
