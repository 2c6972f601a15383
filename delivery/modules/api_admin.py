"""``POST /v1/admin/events``: announce a published track (``encoder ingest --notify URL``).

Body ``{"event": "track.published", "track_id": "...", "version": "..."}`` with
``Authorization: Bearer <admin token>`` (checked by :func:`delivery.services.require_admin`,
like every admin route). The manifest must already be in the
store (404 otherwise); the event is then written to the outbox
(:mod:`delivery.outbox`): every worker of every host drops its cached
``latest.json`` and "no such track" for it, and the search index picks it up
once (usually before the response is sent, 202). ``delivery catalog sync``
writes the same event for each track it indexes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from delivery.errors import BadRequest, NotFound, ServiceUnavailable
from delivery.events import TRACK_PUBLISHED
from delivery.modules.ids import check_track_id
from delivery.services import ServicesDep, require_admin
from origin.errors import InvalidKey, StoreError
from origin.keys import latest_key, manifest_key, validate_version

router = APIRouter(tags=["admin"])

ACCEPTED_EVENTS = (TRACK_PUBLISHED,)


class EventBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: str
    track_id: str
    version: str | None = None


@router.post(
    "/v1/admin/events",
    status_code=202,
    dependencies=[Depends(require_admin)],
    openapi_extra={"security": [{"admin": []}]},
)
def post_event(body: EventBody, s: ServicesDep) -> dict[str, Any]:
    if body.event not in ACCEPTED_EVENTS:
        raise BadRequest(
            f"unsupported event {body.event[:40]!r}: accepted {', '.join(ACCEPTED_EVENTS)}",
            code="unsupported_event",
        )
    track_id = check_track_id(body.track_id)
    if body.version is not None:
        try:
            validate_version(body.version)
        except InvalidKey as exc:
            raise BadRequest(str(exc), code="invalid_version") from None
    key = manifest_key(track_id, body.version) if body.version else latest_key(track_id)
    try:
        present = s.store.exists(key)
    except StoreError as exc:
        raise ServiceUnavailable(f"object store: {exc}", code="store_unavailable") from None
    if not present:
        raise NotFound(f"{key} is not in the store", code="track_not_found")
    event = s.events.publish(TRACK_PUBLISHED, {"track_id": track_id, "version": body.version})
    return {
        "accepted": True,
        "event_id": event.id,
        "event": body.event,
        "track_id": track_id,
        "version": body.version,
    }
