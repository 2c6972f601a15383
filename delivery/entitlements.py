"""Which bitrate a caller gets: pure functions over tier, quality and the manifest.

Entitlements are configuration (``DELIVERY_ENTITLEMENTS``), by default
``free -> 96, 160`` and ``premium -> 96, 160, 320``. A quality maps to a
bitrate (``DELIVERY_QUALITY_BITRATES``); ``auto`` means the tier's best. A
request above the entitlement is served at the best bitrate the tier allows
and says so (``capped``); it is never an error. Only renditions the manifest
actually holds are offered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Quality = Literal["low", "normal", "high", "auto"]
QUALITIES: tuple[str, ...] = ("low", "normal", "high", "auto")


class NotEntitled(Exception):
    """The manifest holds no rendition the caller's tier may stream."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of :func:`select_bitrate`."""

    bitrate_kbps: int  # the rendition to play first
    capped: bool  # the requested quality is above what the tier allows
    requested_kbps: int  # what the quality asked for (auto: the tier's best)
    entitled: tuple[int, ...]  # every rendition the caller may switch to, ascending


def entitled_bitrates(allowed: Iterable[int], available: Iterable[int]) -> tuple[int, ...]:
    """Bitrates both allowed by the tier and present in the manifest, ascending."""
    return tuple(sorted(set(allowed) & set(available)))


def select_bitrate(
    quality: str,
    allowed: Iterable[int],
    available: Iterable[int],
    quality_bitrates: Mapping[str, int],
) -> Selection:
    """Pick the bitrate for ``quality`` given the tier's ``allowed`` bitrates.

    >>> select_bitrate("high", [96, 160], [96, 160, 320], {"low": 96, "normal": 160, "high": 320})
    Selection(bitrate_kbps=160, capped=True, requested_kbps=320, entitled=(96, 160))
    """
    allowed = tuple(sorted(set(allowed)))
    if not allowed:
        raise NotEntitled("the tier allows no bitrate")
    entitled = entitled_bitrates(allowed, available)
    if not entitled:
        raise NotEntitled("no rendition of this track is available to your subscription")
    if quality == "auto":
        requested = allowed[-1]
    else:
        try:
            requested = quality_bitrates[quality]
        except KeyError:
            raise ValueError(f"unknown quality {quality!r}: use {', '.join(QUALITIES)}") from None
    ceiling = min(requested, allowed[-1])
    capped = requested > allowed[-1]
    at_or_below = [b for b in entitled if b <= ceiling]
    # Nothing at or below the ceiling (a manifest without its low renditions): the
    # smallest entitled one is the closest honest answer.
    chosen = at_or_below[-1] if at_or_below else entitled[0]
    return Selection(chosen, capped, requested, entitled)


def url_ttl_s(duration_s: float, *, base_s: int, factor: float, max_s: int) -> int:
    """Lifetime of a signed URL: ``base_s``, stretched to ``factor`` x the track's
    duration (so a long track plays to its end with pauses), never beyond ``max_s``."""
    stretched = math.ceil(max(0.0, duration_s) * factor) if math.isfinite(duration_s) else 0
    return max(1, min(max(base_s, stretched), max_s))
