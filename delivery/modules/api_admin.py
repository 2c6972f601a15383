"""``POST /v1/admin/events``: announce a published track (``encoder ingest --notify URL``).

Body ``{"event": "track.published", "track_id": "...", "version": "..."}`` with
``Authorization: Bearer <admin token>``. The manifest must already be in the
store (404 otherwise); the event is then written to the outbox
(:mod:`delivery.outbox`): every worker of every host drops its cached
``latest.json`` and "no such track" for it, and the search index picks it up
once (usually before the response is sent, 202). ``delivery catalog sync``
writes the same event for each track it indexes.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from delivery.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized
from delivery.events import TRACK_PUBLISHED
from delivery.modules.container import modules_of
from delivery.modules.ids import check_track_id
from origin.errors import InvalidKey, StoreError
from origin.keys import latest_key, manifest_key, validate_version

router = APIRouter(tags=["admin"])

ACCEPTED_EVENTS = (TRACK_PUBLISHED,)


class EventBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: str
    track_id: str
    version: str | None = None


def admin_tokens(app_state: Any) -> list[str]:
    """Every admin token the app accepts, from wherever the app's settings keep them."""
    # The delivery app keeps the resolved tokens (settings + token file) on its context.
    context = getattr(app_state, "delivery", None)
    found = getattr(context, "admin_tokens", None) or getattr(app_state, "admin_tokens", None)
    if found:
        return [t for t in found if t]
    settings = getattr(app_state, "settings", None)
    tokens: list[str] = []
    for name in ("admin_tokens", "admin_token"):
        value = getattr(settings, name, None)
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            v = v.get_secret_value() if hasattr(v, "get_secret_value") else v
            if isinstance(v, str) and v.strip():
                tokens.append(v.strip())
    token_file = getattr(settings, "effective_admin_token_file", None)
    if isinstance(token_file, Path) and token_file.is_file():
        text = token_file.read_text().strip()
        if text:
            tokens.append(text)
    return tokens


def _require_admin(request: Request) -> None:
    tokens = getattr(request.app.state, "_modules_admin_tokens", None)
    if tokens is None:
        tokens = admin_tokens(request.app.state)
        request.app.state._modules_admin_tokens = tokens
    if not tokens:
        raise ServiceUnavailable("no admin token is configured", code="admin_disabled")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    given = given.strip()
    ok = False
    for token in tokens:
        # Compare against every token, always, so timing says nothing about which matched.
        ok |= hmac.compare_digest(given.encode(), token.encode())
    if scheme.lower() != "bearer" or not given or not ok:
        raise Unauthorized(
            "admin bearer token required", headers={"WWW-Authenticate": 'Bearer realm="admin"'}
        )


@router.post("/v1/admin/events", status_code=202)
def post_event(body: EventBody, request: Request) -> dict[str, Any]:
    _require_admin(request)
    if body.event not in ACCEPTED_EVENTS:
        raise BadRequest(
            f"unsupported event {body.event[:40]!r}: accepted {', '.join(ACCEPTED_EVENTS)}",
            code="unsupported_event",
        )
    m = modules_of(request)
    track_id = check_track_id(body.track_id)
    if body.version is not None:
        try:
            validate_version(body.version)
        except InvalidKey as exc:
            raise BadRequest(str(exc), code="invalid_version") from None
    if m.store is None:
        raise ServiceUnavailable("no object store configured", code="store_unavailable")
    key = manifest_key(track_id, body.version) if body.version else latest_key(track_id)
    try:
        present = m.store.exists(key)
    except StoreError as exc:
        raise ServiceUnavailable(f"object store: {exc}", code="store_unavailable") from None
    if not present:
        raise NotFound(f"{key} is not in the store", code="track_not_found")
    event = m.events.publish(TRACK_PUBLISHED, {"track_id": track_id, "version": body.version})
    return {
        "accepted": True,
        "event_id": event.id,
        "event": body.event,
        "track_id": track_id,
        "version": body.version,
    }
