"""A listener's X-Request-Id is logged by the edge and travels upstream with the fill it starts,
so one request can be followed from the edge's access log into the origin's."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from common.logs import configure_logging
from edge.app import create_app
from origin.server import create_app as create_origin
from tests.edge.conftest import PULL_TOKEN, access_lines, put_random, serving

pytestmark = pytest.mark.anyio


async def test_request_id_reaches_the_edge_log_and_the_origin(make_settings, store, url, tmp_path):
    data = put_random(store)
    stream = io.StringIO()
    configure_logging("origin", "info", stream=stream)
    origin = httpx.ASGITransport(app=create_origin(store, [PULL_TOKEN]))
    app = create_app(make_settings(upstream="http://origin.test"), transport=origin)
    try:
        async with serving(app) as client:
            first = await client.get(url(), headers={"X-Request-Id": "listener-42"})
            second = await client.get(url(), headers={"X-Request-Id": "bad id with spaces"})
            third = await client.get(url())
    finally:
        logging.getLogger().handlers[:] = []
    assert first.content == data and second.status_code == third.status_code == 200
    edge_ids = [line["request_id"] for line in access_lines(tmp_path)]
    assert edge_ids[0] == "listener-42"
    # A malformed id is replaced, and a request without one still gets an id of its own.
    assert len(set(edge_ids)) == 3 and all(edge_ids)
    origin_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    fills = [e for e in origin_lines if e["logger"] == "origin.access"]
    assert [(e["request_id"], e["status"]) for e in fills] == [("listener-42", 200)]
