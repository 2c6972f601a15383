"""Request ids and JSON access lines of the delivery service."""

from __future__ import annotations

import io
import json
import logging

import pytest

from common.logs import configure_logging

pytestmark = pytest.mark.anyio


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("delivery", "info", stream=stream)
    yield stream
    logging.getLogger().handlers[:] = []


def access_lines(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in lines if e["logger"] == "delivery.access"]


async def test_request_id_is_echoed_and_logged(client, auth, log_stream):
    answer = await client.get("/v1/me", headers={**auth("alice"), "X-Request-Id": "player-7"})
    missing = await client.get("/v1/tracks/nope-track/stream", headers=auth("alice"))
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "player-7"
    assert missing.status_code == 404 and len(missing.headers["x-request-id"]) == 32
    lines = access_lines(log_stream)
    assert [(e["request_id"], e["status"], e["route"]) for e in lines] == [
        ("player-7", 200, "/v1/me"),
        (missing.headers["x-request-id"], 404, "/v1/tracks/{track_id}/stream"),
    ]
    assert all(e["part"] == "delivery" and isinstance(e["ms"], float) for e in lines)


async def test_health_checks_are_not_access_logged(client, log_stream):
    assert (await client.get("/healthz")).status_code == 200
    assert access_lines(log_stream) == []


async def test_access_log_can_be_turned_off(make_app, auth, log_stream):
    from tests.delivery.conftest import client_for

    async with client_for(make_app(access_log=False)) as quiet:
        answer = await quiet.get("/v1/me", headers=auth("alice"))
    assert answer.status_code == 200 and "x-request-id" in answer.headers
    assert access_lines(log_stream) == []
