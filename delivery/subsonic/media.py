"""``stream``, ``download`` and ``getCoverArt``: redirects to signed edge URLs.

Delivery never serves bytes: a Subsonic app is sent (302) to the same signed URL the v1
API hands out, so audio still comes from the edge and its cache. The bitrate is the
caller's entitled one (:mod:`delivery.entitlements` through the stream issuer), lowered
to honour ``maxBitRate`` (:func:`pick_bitrate`). ``download`` gets the best rendition the
subscription allows: a Subsonic download is the file an app keeps for offline play.
Cover art is the library's (``encoder.cover_art`` extracts it at ingest; an album or an
artist shows its first track's): the ~300 px thumbnail for ``size`` up to 300, else the
original; no art is error 70, never a placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from delivery.identity import Principal
from delivery.modules.art_urls import ArtSigner
from delivery.resolver import Track
from delivery.streams import StreamIssuer
from delivery.subsonic.errors import NOT_FOUND, SubsonicError

THUMBNAIL_MAX_SIZE = 300
LOWEST_RUNG = 96


def pick_bitrate(entitled: Sequence[int], max_bitrate: int) -> int:
    """The rendition to stream among ``entitled`` (ascending, not empty) for ``maxBitRate``.

    0 means no limit (the best entitled); otherwise the best at or below it, where a
    limit under the lowest rung counts as that rung, since nothing smaller exists.

    >>> pick_bitrate([96, 160, 320], 200), pick_bitrate([96, 160], 0), pick_bitrate([96], 32)
    (160, 160, 96)
    """
    if max_bitrate <= 0:
        return entitled[-1]
    ceiling = max(max_bitrate, LOWEST_RUNG)
    fitting = [b for b in entitled if b <= ceiling]
    return fitting[-1] if fitting else entitled[0]


def audio_url(
    issuer: StreamIssuer,
    principal: Principal,
    track: Track,
    max_bitrate: int,
    client_ip: str | None,
    region: str | None,
) -> str:
    """The signed URL of the rendition :func:`pick_bitrate` picks (every entitled one is
    signed by the issuer, with its metrics and lifetime rules; one is used)."""
    answer = issuer.sign_answer(principal, track, "auto", client_ip, region)
    urls = {r["bitrate_kbps"]: r["url"] for r in answer["renditions"]}
    return urls[pick_bitrate(sorted(urls), max_bitrate)]


def art_url(
    signer: ArtSigner,
    row: Mapping[str, Any] | None,
    size: int | None,
    user_id: str,
    client_ip: str | None,
    region: str | None,
) -> str:
    """The signed URL of a library row's art (a song's, an album's or an artist's): the
    thumbnail for ``size`` up to :data:`THUMBNAIL_MAX_SIZE`, else the original. Signed
    as the library API signs it (:mod:`delivery.modules.art_urls`), so both hand out the
    same URL and the client's cache serves the repeats."""
    urls = None
    if row is not None:
        sign = signer.for_listener(user_id, client_ip, region)
        urls = sign(row.get("art_key"), row.get("art_thumb_key"))
    if urls is None:
        raise SubsonicError(NOT_FOUND, "Cover art not found")
    return urls["thumbnail_url"] if size is not None and size <= THUMBNAIL_MAX_SIZE else urls["url"]
