"""`origin serve` as a real process on a free port, driven over real sockets."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
from types import SimpleNamespace

import httpx
import pytest

from origin.keys import rendition_key
from origin.local import LocalStore
from origin.store import open_store
from tests.support.servers import VENV_BIN, ServerProcess, free_port, on_free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # origin serve as a process; moto

KEY = rendition_key("song", "0123456789abcdef", 160)
BIG = rendition_key("song", "0123456789abcdef", 320)
DATA = bytes(range(256)) * 8  # 2048 bytes
PASSWD = "root:x:0:0:FAKE-PASSWD-OUTSIDE-THE-STORE"


def start_origin(base, store_url: str) -> SimpleNamespace:
    return on_free_port(lambda port: _start_origin(base, store_url, port))


def _start_origin(base, store_url: str, port: int) -> SimpleNamespace:
    env = {
        "ORIGIN_STORE": store_url,
        "ORIGIN_HOST": "127.0.0.1",
        "ORIGIN_PORT": str(port),
        "ORIGIN_PULL_TOKEN": "",  # empty: use (and create) the token file
        "ORIGIN_PULL_TOKEN_FILE": str(base / "secrets" / "pull-token"),
        "ORIGIN_LOG_LEVEL": "warning",
    }
    server = ServerProcess("origin", [str(VENV_BIN / "origin"), "serve"], env=env, cwd=base)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/healthz")
    token = subprocess.run(
        [str(VENV_BIN / "origin"), "pull-token"],
        env={**os.environ, **env},
        cwd=base,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return SimpleNamespace(server=server, url=url, port=port, token=token, base=base)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    base = tmp_path_factory.mktemp("origin-serve")
    store = LocalStore(base / "store")
    store.put_bytes(KEY, DATA)
    with open(base / "big.ogg", "wb") as fh:
        for i in range(32):
            fh.write(bytes([i]) * (1024 * 1024))
    store.put_file(BIG, base / "big.ogg")
    # What a traversal from the store root would reach: it must never be served.
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text(PASSWD)
    running = start_origin(base, f"file://{base}/store")
    try:
        yield running
    finally:
        running.server.stop()


def store_ops(origin) -> float:
    """How many store operations the server has made, from its /metrics."""
    text = httpx.get(f"{origin.url}/metrics").text
    return sum(
        float(m)
        for m in re.findall(r"^origin_store_operation_seconds_count\{.*\} (\S+)$", text, re.M)
    )


def test_the_token_file_is_created_private(origin):
    path = origin.base / "secrets" / "pull-token"
    assert path.read_text().strip() == origin.token
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(origin.token) >= 32


def test_range_0_99_with_the_token_is_206_and_exactly_100_bytes(origin):
    r = httpx.get(
        f"{origin.url}/{KEY}",
        headers={"Authorization": f"Bearer {origin.token}", "Range": "bytes=0-99"},
    )
    assert r.status_code == 206
    assert len(r.content) == 100
    assert r.content == DATA[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{len(DATA)}"


def test_without_the_token_401(origin):
    r = httpx.get(f"{origin.url}/{KEY}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "raw_path",
    [
        "/tracks/../../etc/passwd",
        "/tracks/%2e%2e/%2e%2e/etc/passwd",
        "/tracks/%2E%2E/%2E%2E/etc/passwd",
        "/tracks/..%2f..%2fetc%2fpasswd",
        "/tracks/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/tracks/..%5c..%5cetc%5cpasswd",
        "/../etc/passwd",
    ],
)
def test_traversal_is_400_with_nothing_read(origin, raw_path):
    before = store_ops(origin)
    # http.client sends the path byte for byte (httpx would normalise "..").
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        conn.request("GET", raw_path, headers={"Authorization": f"Bearer {origin.token}"})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 400
    assert json.loads(body)["error"]["code"] == "invalid_key"
    assert "FAKE-PASSWD" not in body
    assert store_ops(origin) == before  # the store was not touched


def test_a_large_object_streams_whole(origin):
    digest = hashlib.sha256()
    total = 0
    headers = {"Authorization": f"Bearer {origin.token}"}
    with httpx.stream("GET", f"{origin.url}/{BIG}", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(32 * 1024 * 1024)
        for chunk in r.iter_raw():
            digest.update(chunk)
            total += len(chunk)
    assert total == 32 * 1024 * 1024
    assert digest.hexdigest() == r.headers["x-checksum-sha256"]


def _streams_in_flight(origin) -> float:
    text = httpx.get(f"{origin.url}/metrics").text
    return float(re.search(r"^origin_http_streams_in_flight (\S+)$", text, re.M).group(1))


def test_a_client_going_away_ends_its_stream(origin):
    headers = {"Authorization": f"Bearer {origin.token}"}
    with httpx.stream("GET", f"{origin.url}/{BIG}", headers=headers) as r:
        assert r.status_code == 200
        next(r.iter_raw(65536))
    # The server notices the closed connection and drops the stream (and its read).
    wait_for(
        lambda: _streams_in_flight(origin) == 0,
        what="origin to drop the stream of a client that went away",
        timeout=30,
        detail=lambda: f"streams in flight: {_streams_in_flight(origin)}",
    )
    assert httpx.get(f"{origin.url}/healthz").status_code == 200


def test_readiness_and_metrics_over_http(origin):
    assert httpx.get(f"{origin.url}/readyz").json() == {"status": "ready"}
    assert "origin_http_requests_total" in httpx.get(f"{origin.url}/metrics").text


def test_serving_an_s3_store(s3_store_url, tmp_path):
    open_store(s3_store_url).put_bytes(KEY, DATA)
    running = start_origin(tmp_path, s3_store_url)
    try:
        r = httpx.get(
            f"{running.url}/{KEY}",
            headers={"Authorization": f"Bearer {running.token}", "Range": "bytes=0-99"},
        )
        assert r.status_code == 206
        assert r.content == DATA[:100]
        assert r.headers["x-checksum-sha256"] == hashlib.sha256(DATA).hexdigest()
        assert httpx.get(f"{running.url}/readyz").status_code == 200
    finally:
        running.server.stop()


def test_serve_refuses_to_start_on_a_missing_bucket(moto_endpoint, tmp_path):
    result = subprocess.run(
        [str(VENV_BIN / "origin"), "serve", "--port", str(free_port())],
        env={
            **os.environ,
            "ORIGIN_STORE": f"s3://no-such-bucket-x/p?endpoint_url={moto_endpoint}",
            "ORIGIN_PULL_TOKEN": "a-long-enough-pull-token-123",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "origin: error: S3 bucket 'no-such-bucket-x' does not exist" in result.stderr
