"""``edge loadtest``: pure helpers, argument checks, and a short run against a real edge."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from common.signing_keys import ensure_dev_keypair
from loadtest.run import content_range_size, is_loopback_url, percentile, zipf_weights
from origin.local import LocalStore
from tests.edge.conftest import PULL_TOKEN
from tests.support.servers import VENV_BIN, serve_edge

EDGE = str(VENV_BIN / "edge")


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return ensure_dev_keypair(tmp_path / "keys")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_zipf_weights_favour_the_first_ranks():
    w = zipf_weights(4, 1.0)
    assert w == [1.0, 0.5, 1 / 3, 0.25]
    assert zipf_weights(3, 0.0) == [1.0, 1.0, 1.0]


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_loopback_check():
    assert is_loopback_url("http://127.0.0.1:8080")
    assert is_loopback_url("http://[::1]:8080")
    assert is_loopback_url("http://localhost:8080")
    assert not is_loopback_url("http://10.1.2.3:8080")
    assert not is_loopback_url("http://192.0.2.1")


def test_content_range_size():
    assert content_range_size("bytes 0-99/1000") == 1000
    assert content_range_size("bytes */1000") == 1000
    assert content_range_size(None) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--edge", "http://10.1.2.3:8080", "--hs256-secret", "s" * 40, "--tracks",
          "tracks/a/0123456789abcdef/96.ogg"], "not a loopback address"),
        (["--edge", "http://127.0.0.1:1", "--tracks", "tracks/a/0123456789abcdef/96.ogg"],
         "--signing-key"),
        (["--edge", "http://127.0.0.1:1", "--hs256-secret", "s" * 40], "no tracks"),
        (["--edge", "http://127.0.0.1:1", "--hs256-secret", "s" * 40, "--tracks", "../etc"],
         "not a rendition key"),
        (["--delivery", "http://127.0.0.1:1", "--tracks", "a"], "--user-token"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_errors(argv, message):
    r = subprocess.run([EDGE, "loadtest", *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_short_run_against_a_real_edge(tmp_path, keypair, store):
    keys = [f"tracks/lt{i}/0123456789abcdef/160.ogg" for i in range(5)]
    for k in keys:
        store.put_bytes(k, os.urandom(400_000))

    edge, base = serve_edge(
        {
            "EDGE_UPSTREAM": store.url,
            "EDGE_PULL_TOKEN": PULL_TOKEN,
            "EDGE_TOKEN_PUBLIC_KEYS": str(keypair[1]),
            "EDGE_CACHE_DIR": str(tmp_path / "cache"),
            "EDGE_ACCESS_LOG": "off",
            "EDGE_DEV_MODE": "false",
        }
    )
    with edge:
        r = subprocess.run(
            [EDGE, "loadtest", "--edge", base, "--signing-key",
             str(keypair[0]), "--store", store.url, "--duration", "20", "--max-requests", "300",
             "--listeners", "8", "--seed", "1", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["requests"] == 300 and report["errors"] == 0
    assert set(report["statuses"]) == {"206"}
    assert report["tracks"] == 5
    assert report["x_cache"]["HIT"] > 0 and 0 < report["hit_ratio"] <= 1
    assert report["ttfb_ms"]["p50"] <= report["latency_ms"]["p50"]
    assert report["bytes"] > 300 * 60_000
