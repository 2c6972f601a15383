"""Tell the delivery service that a track was published (best effort).

``POST {delivery}/v1/admin/events`` with ``Authorization: Bearer <admin token>``
and ``{"event": "track.published", "track_id": ..., "version": ...}``. The
store is the source of truth, so a failed notification is a warning, never a
failed ingest: delivery also finds the version through ``latest.json``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

EVENTS_PATH = "/v1/admin/events"


def events_url(url: str) -> str:
    """Accept the delivery base URL or the full events URL."""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith(EVENTS_PATH):
        return url
    return url.rstrip("/") + EVENTS_PATH


def notify_published(
    url: str,
    track_id: str,
    version: str,
    *,
    token: str | None = None,
    timeout_s: float = 5.0,
    transport=None,
) -> str | None:
    """POST the event; return None on success, else a one-line warning."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"event": "track.published", "track_id": track_id, "version": version}
    target = events_url(url)
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.post(target, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"could not notify {target}: {type(exc).__name__}: {exc}"
    if response.status_code >= 300:
        return f"could not notify {target}: HTTP {response.status_code}"
    return None
