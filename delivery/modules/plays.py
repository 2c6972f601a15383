"""Plays: the listening history, and what it feeds (popularity, friends-listened).

``POST /v1/me/plays`` stores one row in the user's ``plays`` partition, keyed by
the client's ``play_id``, so a retried POST is a no-op (and a different play
reusing an id is a 409). A new play raises ``play.recorded``; its handler,
:meth:`PlayService.on_play_recorded`, adds the play to the track's counter
(``track_stats``, copied onto the catalog row for ranking, and its artist's and
album's), and to the ``track_listeners`` partition that
friends-listened reads. The handler may run twice (at-least-once delivery), so
it first flips the play's ``counted`` flag from false to true and only counts
when that update changed a row: duplicates count nothing.

Only plays that can be true feed the counters: ``played_at`` may be at most
``DELIVERY_PLAY_MAX_FUTURE_S`` ahead of the server's clock and at most
``DELIVERY_PLAY_MAX_AGE_S`` behind it (400 ``play_too_old``: a time sent in
seconds where milliseconds are expected reads as 1970), and the track must be in
the catalog — indexed, or published in the store and not yet indexed (404
``track_not_found`` otherwise).

The history pages newest first in ``(played_at, play_id)`` order, so plays
sharing one millisecond are neither lost nor repeated across pages: the
cursors we hand out carry both (:func:`encode_play_cursor`), and a bare
millisecond time (Spotify's form) is still accepted from clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from delivery.db import Database
from delivery.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from delivery.events import PLAY_RECORDED, Event, EventBus
from delivery.modules.bounds import epoch_ms_in_range
from delivery.modules.ids import check_track_id, now_ms
from delivery.modules.paging import decode_cursor, encode_cursor
from delivery.settings import DeliverySettings
from origin.errors import InvalidKey, StoreError
from origin.keys import BITRATES, latest_key, validate_version
from origin.store import ObjectStore

_PLAY_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_MS_RE = re.compile(r"[0-9]{1,15}")
MAX_CURSOR_LENGTH = 200
CONTEXT_TYPES = ("playlist", "album", "artist", "search", "collection", "radio", "other")
MAX_MS_PLAYED = 24 * 3600 * 1000
_PLAY_COLS = (
    "user_id, play_id, track_id, version, bitrate_kbps, ms_played, context_type, context_uri, "
    "played_at, recorded_at"
)


# A history position: (played_at, play_id), or (played_at, None) for a bare time.
PlayCursor = tuple[int, str | None]


def encode_play_cursor(row: dict[str, Any]) -> str:
    return encode_cursor(row["played_at"], row["play_id"])


def parse_play_cursor(value: str | None, name: str) -> PlayCursor | None:
    """A ``before``/``after`` parameter: milliseconds, or a cursor we handed out (400 else)."""
    if value is None:
        return None
    invalid = BadRequest(
        f"{name} must be a Unix time in milliseconds or a cursor from a previous page",
        code="invalid_cursor",
    )
    if len(value) > MAX_CURSOR_LENGTH:
        raise invalid
    if _MS_RE.fullmatch(value):
        at, play_id = value, None
    else:
        try:
            at, play_id = decode_cursor(value, 2)
        except BadRequest:
            raise invalid from None
        if not _PLAY_ID_RE.fullmatch(play_id) or not _MS_RE.fullmatch(at):
            raise invalid
    ms = int(at)
    if not epoch_ms_in_range(ms):
        raise invalid
    return ms, play_id


@dataclass(frozen=True)
class PlayIn:
    play_id: str
    track_id: str
    ms_played: int
    version: str | None = None
    bitrate_kbps: int | None = None
    context_type: str | None = None
    context_uri: str | None = None
    played_at: int | None = None  # ms since the epoch; None = now


def parse_played_at(value: str | int | None) -> int | None:
    """RFC 3339 string or integer milliseconds -> milliseconds (400 when neither)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest("played_at must be an RFC 3339 time or milliseconds", code="invalid_play")
    if isinstance(value, int):
        return value
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise BadRequest(
            "played_at must be an RFC 3339 time or milliseconds", code="invalid_play"
        ) from None
    if dt.tzinfo is None:
        raise BadRequest("played_at needs a time zone (e.g. Z)", code="invalid_play")
    return int(dt.timestamp() * 1000)


class PlayService:
    def __init__(
        self,
        db: Database,
        settings: DeliverySettings,
        events: EventBus,
        store: ObjectStore | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.events = events
        self.store = store

    def _validate(self, play: PlayIn, now: int) -> int:
        if not isinstance(play.play_id, str) or not _PLAY_ID_RE.fullmatch(play.play_id):
            raise BadRequest(
                "play_id must be 1-64 characters A-Z a-z 0-9 . _ : -", code="invalid_play"
            )
        check_track_id(play.track_id)
        if play.version is not None:
            try:
                validate_version(play.version)
            except InvalidKey as exc:
                raise BadRequest(str(exc), code="invalid_play") from None
        if play.bitrate_kbps is not None and play.bitrate_kbps not in BITRATES:
            raise BadRequest(f"bitrate_kbps must be one of {BITRATES}", code="invalid_play")
        if not 0 <= play.ms_played <= MAX_MS_PLAYED:
            raise BadRequest(f"ms_played must be 0..{MAX_MS_PLAYED}", code="invalid_play")
        if play.context_type is not None and play.context_type not in CONTEXT_TYPES:
            raise BadRequest(
                f"context.type must be one of {', '.join(CONTEXT_TYPES)}", code="invalid_play"
            )
        if play.context_uri is not None and len(play.context_uri) > 200:
            raise BadRequest("context.uri is too long", code="invalid_play")
        played_at = now if play.played_at is None else play.played_at
        if played_at > now + self.settings.play_max_future_s * 1000:
            raise BadRequest("played_at is in the future", code="invalid_play")
        if played_at < now - self.settings.play_max_age_s * 1000:
            raise BadRequest(
                f"played_at is more than {self.settings.play_max_age_s} s ago "
                "(DELIVERY_PLAY_MAX_AGE_S); is it in seconds instead of milliseconds?",
                code="play_too_old",
            )
        return played_at

    def _check_known_track(self, track_id: str) -> None:
        """404 unless the catalog indexed the track or the store has published it."""
        with self.db.transaction(write=False) as tx:
            indexed = tx.fetchone("SELECT 1 AS x FROM tracks WHERE track_id = :t", {"t": track_id})
        if indexed is not None:
            return
        # Published but not indexed yet (no notify, no sync so far): streamable, so
        # countable; track_stats keeps the count until the catalog row exists.
        if self.store is not None:
            try:
                if self.store.exists(latest_key(track_id)):
                    return
            except StoreError as exc:
                raise ServiceUnavailable(f"object store: {exc}", code="store_unavailable") from None
        raise NotFound(f"track {track_id!r} not found", code="track_not_found")

    def record(self, user_id: str, play: PlayIn) -> tuple[dict[str, Any], bool]:
        """Store the play; return (the stored row, True when it is new)."""
        now = now_ms()
        played_at = self._validate(play, now)
        self._check_known_track(play.track_id)
        row = {
            "user_id": user_id,
            "play_id": play.play_id,
            "track_id": play.track_id,
            "version": play.version,
            "bitrate_kbps": play.bitrate_kbps,
            "ms_played": play.ms_played,
            "context_type": play.context_type,
            "context_uri": play.context_uri,
            "played_at": played_at,
            "recorded_at": now,
        }
        with self.db.transaction() as tx:
            created = tx.execute(
                f"INSERT INTO plays ({_PLAY_COLS}) VALUES ("
                + ", ".join(f":{c.strip()}" for c in _PLAY_COLS.split(","))
                + ") ON CONFLICT (user_id, play_id) DO NOTHING",
                row,
            )
            if not created:
                stored = tx.fetchone(
                    f"SELECT {_PLAY_COLS} FROM plays WHERE user_id = :user_id "
                    "AND play_id = :play_id",
                    row,
                )
            else:
                # Written with the play: a crash after the commit cannot lose the count.
                self.events.publish(
                    PLAY_RECORDED,
                    {
                        "user_id": user_id,
                        "play_id": play.play_id,
                        "track_id": play.track_id,
                        "played_at": played_at,
                    },
                    tx=tx,
                )
        if not created:
            same = all(
                stored[k] == row[k]
                for k in ("track_id", "version", "bitrate_kbps", "ms_played", "context_uri")
            ) and (play.played_at is None or stored["played_at"] == played_at)
            if not same:
                raise Conflict(
                    f"play_id {play.play_id!r} was already used for a different play",
                    code="play_id_conflict",
                )
            return stored, False
        return row, True

    def on_play_recorded(self, event: Event) -> None:
        """Count the play once, however often the event is delivered."""
        user_id = str(event.payload["user_id"])
        play_id = str(event.payload["play_id"])
        greatest = "GREATEST" if self.db.dialect == "postgresql" else "MAX"
        with self.db.transaction() as tx:
            play = tx.fetchone(
                "SELECT track_id, played_at FROM plays WHERE user_id = :u AND play_id = :p",
                {"u": user_id, "p": play_id},
            )
            if play is None:
                return
            claimed = tx.execute(
                "UPDATE plays SET counted = :yes WHERE user_id = :u AND play_id = :p "
                "AND counted = :no",
                {"u": user_id, "p": play_id, "yes": True, "no": False},
            )
            if not claimed:
                return
            t = {"t": play["track_id"], "u": user_id, "at": play["played_at"]}
            tx.execute(
                "INSERT INTO track_stats (track_id, plays) VALUES (:t, 1) "
                "ON CONFLICT (track_id) DO UPDATE SET plays = track_stats.plays + 1",
                t,
            )
            tx.execute("UPDATE tracks SET plays = plays + 1 WHERE track_id = :t", t)
            tx.execute(
                "UPDATE artists SET plays = plays + 1 WHERE artist_id = "
                "(SELECT artist_id FROM tracks WHERE track_id = :t)",
                t,
            )
            tx.execute(
                "UPDATE albums SET plays = plays + 1 WHERE album_id = "
                "(SELECT album_id FROM tracks WHERE track_id = :t)",
                t,
            )
            tx.execute(
                "INSERT INTO track_listeners (track_id, user_id, last_played_at, play_count) "
                "VALUES (:t, :u, :at, 1) ON CONFLICT (track_id, user_id) DO UPDATE SET "
                f"last_played_at = {greatest}(track_listeners.last_played_at, "
                "excluded.last_played_at), play_count = track_listeners.play_count + 1",
                t,
            )

    def recently_played(
        self,
        user_id: str,
        *,
        limit: int,
        before: PlayCursor | None = None,
        after: PlayCursor | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``before``/``after`` are exclusive bounds in ``(played_at, play_id)``.

        A bound without a play id (a bare time) excludes that whole millisecond.
        """
        if before is not None and after is not None:
            raise BadRequest("give before or after, not both", code="invalid_cursor")
        cols = ", ".join(f"p.{c.strip()}" for c in _PLAY_COLS.split(","))
        track_cols = (
            "t.version AS track_version, t.title, t.artist, t.album, t.artist_id, t.album_id, "
            "t.year, t.duration_ms"
        )
        base = (
            f"SELECT {cols}, {track_cols} FROM plays p "
            "LEFT JOIN tracks t ON t.track_id = p.track_id WHERE p.user_id = :u"
        )
        params: dict[str, Any] = {"u": user_id, "n": limit}

        def bound(cursor: PlayCursor, op: str) -> str:
            params["at"], play_id = cursor
            if play_id is None:
                return f" AND p.played_at {op} :at"
            params["pid"] = play_id
            return f" AND (p.played_at {op} :at OR (p.played_at = :at AND p.play_id {op} :pid))"

        with self.db.transaction(write=False) as tx:
            if after is not None:
                rows = tx.fetchall(
                    f"{base}{bound(after, '>')} ORDER BY p.played_at, p.play_id LIMIT :n",
                    params,
                )
                rows.reverse()
            else:
                clause = bound(before, "<") if before is not None else ""
                rows = tx.fetchall(
                    f"{base}{clause} ORDER BY p.played_at DESC, p.play_id DESC LIMIT :n", params
                )
        return rows
