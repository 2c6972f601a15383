"""Signed URLs of cover art: the stream signer (``DELIVERY_SIGNER``), no entitlement.

Art is free for any authenticated listener: no tier or bitrate is consulted, only the
same :class:`~delivery.signing.port.UrlSigner` as the audio, so the edge (or CDN)
verifies an image URL exactly as it verifies a rendition's.

URLs are stable for a while: ``iat`` is the start of the current window (a third of
``DELIVERY_URL_TTL_S``) and ``exp`` one lifetime after it, so every page a listener
loads within a window carries the SAME URL for an image (the signatures are
deterministic) and the browser's cache answers the repeats. A URL handed out is still
valid for at least two thirds of the lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from delivery.errors import ApiError
from delivery.signing.port import SigningError, UrlRequest, UrlSigner


class ArtSigningFailed(ApiError):
    status, code = 503, "signing_failed"


class ArtSigner:
    """Signs art keys for one listener: ``ArtSigner(...).for_listener(...)(key, thumb)``."""

    def __init__(
        self,
        signer: UrlSigner,
        *,
        ttl_s: int,
        bind_ip: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.ttl_s = ttl_s
        self.bind_ip = bind_ip
        self.clock = clock

    def window(self) -> tuple[int, int]:
        """``(issued_at, expires_at)`` of the URLs signed now."""
        step = max(1, self.ttl_s // 3)
        now = int(self.clock())
        issued = now - now % step
        return issued, issued + self.ttl_s

    def for_listener(
        self, user_id: str, client_ip: str | None = None, region: str | None = None
    ) -> Callable[[str | None, str | None], dict[str, str] | None]:
        """A function: (original key, thumbnail key) -> ``{"url", "thumbnail_url"}``, or None
        when there is no art (either key missing)."""
        issued, expires = self.window()

        def sign(key: str) -> str:
            try:
                return self.signer.sign(
                    UrlRequest(
                        key=key,
                        issued_at=issued,
                        expires_at=expires,
                        sub=user_id,
                        client_ip=client_ip,
                        bind_ip=self.bind_ip,
                        region=region,
                    )
                )
            except SigningError as exc:
                raise ArtSigningFailed(f"cannot sign the URL: {exc}") from None

        def art(key: str | None, thumbnail_key: str | None) -> dict[str, str] | None:
            if not key or not thumbnail_key:
                return None
            return {"url": sign(key), "thumbnail_url": sign(thumbnail_key)}

        return art
