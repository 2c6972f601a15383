"""Identifiers, URIs and times shared by the modules.

URIs follow the Spotify form with our own scheme: ``audiocdn:track:{id}``,
``audiocdn:playlist:{id}``, ``audiocdn:user:{id}``, ``audiocdn:artist:{id}``,
``audiocdn:album:{id}``. Wherever a track is named in a request, the URI and
the bare track id are both accepted.

Times are stored as integer milliseconds since the epoch and shown as RFC 3339
UTC with milliseconds (``2026-01-02T03:04:05.678Z``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime

from delivery.errors import BadRequest
from delivery.tiers import InvalidUserId, validate_user_id
from origin.errors import InvalidKey
from origin.keys import validate_track_id

SCHEME = "audiocdn"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PLAYLIST_ID_RE = re.compile(r"[0-9A-Za-z]{22}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uri(kind: str, ident: str) -> str:
    return f"{SCHEME}:{kind}:{ident}"


def new_playlist_id() -> str:
    # 22 base62 characters (~131 bits), the length of a Spotify id.
    return "".join(secrets.choice(_BASE62) for _ in range(22))


def new_snapshot_id(version: int) -> str:
    """Opaque to clients; the version prefix only helps a human reading logs."""
    return f"{version}.{secrets.token_urlsafe(9)}"


def check_playlist_id(playlist_id: str) -> str:
    from delivery.errors import NotFound

    if not isinstance(playlist_id, str) or not _PLAYLIST_ID_RE.fullmatch(playlist_id):
        # Not a 400: an id of the wrong shape simply names no playlist.
        raise NotFound(f"playlist {playlist_id[:40]!r} not found", code="playlist_not_found")
    return playlist_id


def check_user_id(user_id: str, what: str = "user id") -> str:
    try:
        return validate_user_id(user_id)
    except InvalidUserId as exc:
        raise BadRequest(f"{what}: {exc}", code="invalid_user_id") from None


def check_track_id(track_id: str) -> str:
    try:
        return validate_track_id(track_id)
    except InvalidKey as exc:
        raise BadRequest(str(exc), code="invalid_track_id") from None


def track_id_from_uri(value: str) -> str:
    """``audiocdn:track:{id}`` or a bare id -> the id (400 for anything else)."""
    if not isinstance(value, str):
        raise BadRequest("track URIs must be strings", code="invalid_uri")
    if value.count(":") == 2:
        scheme, kind, ident = value.split(":")
        if scheme != SCHEME or kind != "track":
            raise BadRequest(
                f"invalid track URI {value[:80]!r}: expected {SCHEME}:track:<id>",
                code="invalid_uri",
            )
        return check_track_id(ident)
    if ":" in value:
        raise BadRequest(
            f"invalid track URI {value[:80]!r}: expected {SCHEME}:track:<id>", code="invalid_uri"
        )
    return check_track_id(value)


def split_ids(raw: str | Iterable[str] | None, *, maximum: int, what: str = "ids") -> list[str]:
    """A comma-separated ``ids`` parameter (or a JSON list) -> de-duplicated, in order."""
    if raw is None:
        raise BadRequest(f"{what} is required", code="invalid_request")
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise BadRequest(f"{what} must be strings", code="invalid_request")
        # Spaces after commas are tolerated; any other whitespace (a trailing newline)
        # stays and fails the id check, rather than quietly naming someone else.
        part = part.strip(" ")
        if part and part not in out:
            out.append(part)
    if not out:
        raise BadRequest(f"{what} is required", code="invalid_request")
    if len(out) > maximum:
        raise BadRequest(f"at most {maximum} {what} per request", code="too_many_ids")
    return out


def split_user_ids(raw: str | Iterable[str] | None, *, maximum: int) -> list[str]:
    """An ``ids`` parameter naming users: split as :func:`split_ids`, each id checked."""
    return [check_user_id(u) for u in split_ids(raw, maximum=maximum, what="ids")]


def normalize_name(name: str) -> str:
    """Case-, width- and space-insensitive form of an artist/album name (for ids)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(folded.split())


def stable_id(*parts: str) -> str:
    """A 22-character id derived from names, so re-indexing finds the same artist/album."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    n = int.from_bytes(digest[:17], "big")
    chars = []
    for _ in range(22):
        n, d = divmod(n, 62)
        chars.append(_BASE62[d])
    return "".join(chars)
