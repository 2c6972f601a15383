"""Issuing a stream answer: track (resolver) -> entitlement -> lifetime -> signed URLs.

This is the service's hot path, so everything it touches per request is
cached or pure: the track comes from the resolver's cache (:mod:`delivery.resolver`),
the bitrate choice from :mod:`delivery.entitlements`, and each entitled rendition is
signed once.

**Reuse** (``DELIVERY_URL_REUSE_S``, ``reuse_s``): a player asks again for the track it
is playing (a reload, a retry, another tab), and each signature costs more than the
rest of the answer. So the first answer for a (user, track version) fixes an issue
time that later answers reuse for up to ``reuse_s`` seconds: their URL requests are
then equal, and the signer's memo (:class:`delivery.signing.memo.MemoizedSigner`)
hands back the URLs it made instead of signing again. An issue time is reused only
while ``now - issued_at < reuse_s`` (whole seconds of the issuer's clock), so every
URL handed out has more than ``lifetime - reuse_s`` seconds left; the settings keep
``reuse_s`` at most half of ``DELIVERY_URL_TTL_S``.

The answer is serialised here with orjson (no response-model validation on the way
out; about 1 us where :func:`json.dumps` takes 9): its shape is fixed by this module
and by the ``StreamAnswer`` schema the OpenAPI document shows.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from cachetools import TTLCache

from delivery.entitlements import NotEntitled, Selection, select_bitrate, url_ttl_s
from delivery.errors import ApiError
from delivery.identity import Principal
from delivery.metrics import DeliveryMetrics
from delivery.resolver import Track, TrackResolver
from delivery.signing.port import SigningError, UrlRequest, UrlSigner


class NotEntitledError(ApiError):
    status, code = 403, "not_entitled"


class SigningFailed(ApiError):
    status, code = 503, "signing_failed"


def _source(track: Track) -> dict[str, Any]:
    """What the renditions were made from: a lossy source's bitrate caps their quality."""
    source = track.manifest.source
    return {"codec": source.codec, "lossless": source.lossless, "bitrate_kbps": source.bitrate_kbps}


@functools.lru_cache(maxsize=4096)  # answers reusing an issue time share their expiry
def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class StreamIssuer:
    def __init__(
        self,
        *,
        resolver: TrackResolver,
        signer: UrlSigner,
        entitlements: Mapping[str, Sequence[int]],
        quality_bitrates: Mapping[str, int],
        default_tier: str,
        ttl_s: int,
        ttl_factor: float,
        ttl_max_s: int,
        bind_client_ip: bool,
        metrics: DeliveryMetrics | None = None,
        clock: Callable[[], float] = time.time,
        reuse_s: int = 0,
        reuse_max_entries: int = 32_768,
    ) -> None:
        self.resolver = resolver
        self.signer = signer
        self._entitlements = {t: tuple(b) for t, b in entitlements.items()}
        self._qualities = dict(quality_bitrates)
        # A pure function of a handful of (quality, tier, manifest bitrates) combinations.
        self._select = functools.lru_cache(maxsize=1024)(self._select_bitrate)
        self._default_tier = default_tier
        self._ttl = (ttl_s, ttl_factor, ttl_max_s)
        self._bind = bind_client_ip
        self._metrics = metrics
        self._clock = clock
        # (user, track, version) -> the issue time its answers share (module docstring).
        # The cache's own expiry (on the same clock) only frees memory; _issued_at checks.
        self._reuse_s = reuse_s
        self._issued: TTLCache[tuple[str, str, str], int] | None = (
            TTLCache(reuse_max_entries, reuse_s, timer=clock) if reuse_s > 0 else None
        )
        self._issued_lock = threading.Lock()  # sign_answer also runs in threadpool threads

    def allowed(self, tier: str) -> tuple[int, ...]:
        return self._entitlements.get(tier) or self._entitlements[self._default_tier]

    async def answer(
        self,
        principal: Principal,
        track_id: str,
        quality: str,
        version: str | None,
        client_ip: str | None,
        region: str | None = None,
    ) -> dict[str, Any]:
        track = await self.resolver.track(track_id, version)
        return self.sign_answer(principal, track, quality, client_ip, region)

    def sign_answer(
        self,
        principal: Principal,
        track: Track,
        quality: str,
        client_ip: str | None,
        region: str | None = None,
    ) -> dict[str, Any]:
        try:
            selection = self._select(quality, self.allowed(principal.tier), track.bitrates)
        except NotEntitled as exc:
            raise NotEntitledError(str(exc)) from None
        now = self._issued_at(principal.user_id, track)
        base, factor, cap = self._ttl
        expires_at = now + url_ttl_s(track.duration_s, base_s=base, factor=factor, max_s=cap)
        renditions = []
        url = ""
        try:
            for bitrate in selection.entitled:
                rendition = track.renditions[bitrate]
                signed = self.signer.sign(
                    UrlRequest(
                        key=rendition.key,
                        issued_at=now,
                        expires_at=expires_at,
                        sub=principal.user_id,
                        client_ip=client_ip,
                        bind_ip=self._bind,
                        region=region,
                    )
                )
                renditions.append(
                    {
                        "bitrate_kbps": bitrate,
                        "url": signed,
                        "bytes": rendition.bytes,
                        "avg_bitrate_kbps": rendition.avg_bitrate_kbps,
                    }
                )
                if bitrate == selection.bitrate_kbps:
                    url = signed
        except SigningError as exc:
            raise SigningFailed(f"cannot sign the URL: {exc}") from None
        if self._metrics is not None:
            self._metrics.signed(self.signer.name, len(renditions))
            self._metrics.stream_answer(principal.tier, selection.bitrate_kbps, selection.capped)
        return {
            "track_id": track.track_id,
            "version": track.version,
            "codec": "vorbis",
            "container": "ogg",
            "bitrate_kbps": selection.bitrate_kbps,
            "requested_kbps": selection.requested_kbps,
            "capped": selection.capped,
            "tier": principal.tier,
            "url": url,
            "expires_at": rfc3339(expires_at),
            "duration_s": track.duration_s,
            "loudness": track.loudness,
            "source": _source(track),
            "renditions": renditions,
        }

    def _select_bitrate(
        self, quality: str, allowed: tuple[int, ...], available: tuple[int, ...]
    ) -> Selection:
        return select_bitrate(quality, allowed, available, self._qualities)

    def _issued_at(self, user_id: str, track: Track) -> int:
        """Now, or the issue time of this user's answer for this version within ``reuse_s``."""
        now = int(self._clock())
        issued = self._issued
        if issued is None:
            return now
        key = (user_id, track.track_id, track.version)
        with self._issued_lock:
            try:
                first = issued[key]  # a third of the cost of .get() on a TTLCache
            except KeyError:
                first = None
            # The explicit check is the guarantee (whole seconds: the remaining lifetime
            # stays above lifetime - reuse_s; a clock stepped back never reuses a future
            # issue time); the cache's own float expiry may come later.
            if first is not None and 0 <= now - first < self._reuse_s:
                return first
            issued[key] = now
        return now

    @staticmethod
    def encode(answer: Mapping[str, Any]) -> bytes:
        return orjson.dumps(answer)
