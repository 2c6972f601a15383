"""A real nginx with ``proxy_cache`` in front of a real edge, pulling with the pull token.

nginx is given no ``proxy_cache_valid``: whether and how long it keeps an
object comes from the edge's ``Cache-Control`` alone (``public, max-age=...,
immutable`` for the pull token; the ``private`` of a ``?token=`` answer would
make it cache nothing). The second request for an object is an nginx HIT and
the edge sees one request per object.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.edge.conftest import PULL_TOKEN
from tests.support.servers import ServerProcess, nginx_process, on_free_port, serve_edge
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # real nginx and edge processes

OBJECTS = [f"tracks/t{i}/0123456789abcdef/160.ogg" for i in range(10)]

HTTP = """
    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=edge:10m max_size=1g
                     inactive=1d use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location /tracks/ {{
            # nginx verifies its own signatures in production (secure_link, or the CDN's);
            # towards the edge it authenticates with the pull token.
            proxy_pass {edge};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {pull_token}";
            proxy_cache edge;
            proxy_cache_key $uri;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
"""


@pytest.fixture
def objects(store) -> dict[str, bytes]:
    out = {}
    for i, key in enumerate(OBJECTS):
        out[key] = os.urandom(20_000 + 1000 * i)
        store.put_bytes(key, out[key])
    return out


@pytest.fixture
def edge(tmp_path, store, objects):
    """The edge's base URL."""
    proc, base = serve_edge(
        {
            "EDGE_UPSTREAM": store.url,
            "EDGE_PULL_TOKEN": PULL_TOKEN,  # accepted from pullers (EDGE_ACCEPT_PULL_TOKEN)
            "EDGE_TOKEN_HS256_SECRETS": "s" * 40,
            "EDGE_TOKEN_PUBLIC_KEYS": "",
            "EDGE_CACHE_DIR": str(tmp_path / "edge-cache"),
            "EDGE_ACCESS_LOG": str(tmp_path / "edge-access.log"),
            "EDGE_DEV_MODE": "false",
            "EDGE_LOG_LEVEL": "warning",
        }
    )
    with proc:
        yield base


@pytest.fixture
def nginx(tmp_path, edge):
    prefix = tmp_path / "nginx"
    (prefix / "cache").mkdir(parents=True)

    def start(port: int) -> ServerProcess:
        http = HTTP.format(prefix=prefix, port=port, edge=edge, pull_token=PULL_TOKEN)
        server = nginx_process(prefix, http)
        server.port = port  # type: ignore[attr-defined]
        server.wait_http(f"http://127.0.0.1:{port}/tracks/x", timeout=30, ok=(400, 404))
        return server

    with on_free_port(start) as server:
        yield f"http://127.0.0.1:{server.port}"


def edge_requests(tmp_path: Path) -> list[str]:
    path = tmp_path / "edge-access.log"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["path"] for line in lines if line["path"].startswith("/tracks/t")]


def test_nginx_proxy_cache_in_front_of_an_edge_hits_after_the_first_request(
    nginx, objects, tmp_path
):
    statuses: list[str] = []
    with httpx.Client(base_url=nginx, timeout=30) as client:
        # 100 requests over the 10 objects, round-robin: the first for each object is the
        # only one nginx passes to the edge.
        for i in range(100):
            key = OBJECTS[i % len(OBJECTS)]
            r = client.get("/" + key)
            assert r.status_code == 200 and r.content == objects[key]
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            statuses.append(r.headers["x-cache-status"])
        ranged = client.get("/" + OBJECTS[3], headers={"range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == objects[OBJECTS[3]][100:200]
        assert ranged.headers["x-cache-status"] == "HIT"
    hits = statuses.count("HIT")
    ratio = hits / len(statuses)
    print(f"\nnginx proxy_cache in front of the edge: {hits}/{len(statuses)} HIT ({ratio:.0%})")
    assert statuses[:10] == ["MISS"] * 10  # each object's first request
    assert statuses[10:] == ["HIT"] * 90  # every later one, the second request included
    # The edge saw one request per object, whatever nginx was asked.
    wait_for(
        lambda: len(edge_requests(tmp_path)) >= len(OBJECTS),
        what="the edge's access log",
        timeout=10,
        detail=lambda: edge_requests(tmp_path),
    )
    seen = edge_requests(tmp_path)
    assert sorted(seen) == sorted("/" + key for key in OBJECTS), seen
