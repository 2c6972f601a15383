"""JSON-lines logs and request ids (common.logs), and the origin server's access log."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from common.logs import JsonFormatter, accept_request_id, configure_logging, request_id_var
from origin.keys import rendition_key
from origin.server import create_app

TOKEN = "pull-token-for-tests-0123456789"
KEY = rendition_key("song", "0123456789abcdef", 160)


def test_well_formed_request_ids_are_kept_and_others_replaced():
    assert accept_request_id("abc-123.X:y_z") == "abc-123.X:y_z"
    assert accept_request_id(b"abc") == "abc"
    for bad in (None, "", "a b", 'a"b', "x" * 65, "line\nbreak", "é"):
        new = accept_request_id(bad)
        assert new != bad and len(new) == 32


def test_formatter_writes_one_json_object_with_extras_and_context_id():
    record = logging.LogRecord("edge.fill", logging.WARNING, __file__, 1, "fill %s", ("x",), None)
    record.status = 502
    token = request_id_var.set("rid-1")
    try:
        line = JsonFormatter("edge").format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "fill x" and entry["level"] == "warning"
    assert entry["part"] == "edge" and entry["request_id"] == "rid-1" and entry["status"] == 502
    assert "\n" not in line


@pytest.mark.anyio
async def test_origin_echoes_the_request_id_and_logs_the_request(local_store):
    local_store.put_bytes(KEY, b"x" * 1000)
    stream = io.StringIO()
    configure_logging("origin", "info", stream=stream)
    try:
        transport = httpx.ASGITransport(app=create_app(local_store, [TOKEN]))
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as client:
            given = await client.get(
                f"/{KEY}",
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "X-Request-Id": "from-edge-42",
                    "Range": "bytes=0-9",
                },
            )
            fresh = await client.get(f"/{KEY}")
    finally:
        logging.getLogger().handlers[:] = []
    assert given.status_code == 206 and given.headers["x-request-id"] == "from-edge-42"
    assert fresh.status_code == 401 and len(fresh.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "origin.access"]
    assert [(e["request_id"], e["status"], e["bytes"]) for e in access][:2] == [
        ("from-edge-42", 206, 10),
        (fresh.headers["x-request-id"], 401, access[1]["bytes"]),
    ]
    assert all(e["part"] == "origin" and e["path"] == f"/{KEY}" for e in access)
