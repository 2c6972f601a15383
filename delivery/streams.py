"""Issuing a stream answer: track (resolver) -> entitlement -> lifetime -> signed URLs.

This is the service's hot path, so everything it touches per request is
cached or pure: the track comes from the resolver's cache (:mod:`delivery.resolver`),
the bitrate choice from :mod:`delivery.entitlements`, and each entitled rendition is
signed once.
The answer is serialised here with :func:`json.dumps` (no response-model
validation on the way out): its shape is fixed by this module and by the
``StreamAnswer`` schema the OpenAPI document shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from delivery.entitlements import NotEntitled, select_bitrate, url_ttl_s
from delivery.errors import ApiError
from delivery.identity import Principal
from delivery.metrics import DeliveryMetrics
from delivery.resolver import Track, TrackResolver
from delivery.signing.port import SigningError, UrlRequest, UrlSigner


class NotEntitledError(ApiError):
    status, code = 403, "not_entitled"


class SigningFailed(ApiError):
    status, code = 503, "signing_failed"


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
    ) -> None:
        self.resolver = resolver
        self.signer = signer
        self._entitlements = {t: tuple(b) for t, b in entitlements.items()}
        self._qualities = dict(quality_bitrates)
        self._default_tier = default_tier
        self._ttl = (ttl_s, ttl_factor, ttl_max_s)
        self._bind = bind_client_ip
        self._metrics = metrics
        self._clock = clock

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
            selection = select_bitrate(
                quality, self.allowed(principal.tier), track.bitrates, self._qualities
            )
        except NotEntitled as exc:
            raise NotEntitledError(str(exc)) from None
        now = int(self._clock())
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
                    {"bitrate_kbps": bitrate, "url": signed, "bytes": rendition.bytes}
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
            "renditions": renditions,
        }

    @staticmethod
    def encode(answer: Mapping[str, Any]) -> bytes:
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
