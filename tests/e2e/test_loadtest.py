"""A short ``edge loadtest`` against the running stack: delivery signs, the edge serves."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import record_figure
from tests.e2e.stack import Stack
from tests.support.servers import VENV_BIN

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`
DURATION_S = 6


def test_loadtest_through_delivery_and_edge_has_no_errors(stack: Stack):
    token = stack.user_token("premium-user")
    argv = [
        str(VENV_BIN / "edge"), "loadtest",
        "--edge", stack.edge_url,
        "--delivery", stack.delivery_url,
        "--user-token", token,
        "--tracks", *stack.tracks,
        "--duration", str(DURATION_S),
        "--listeners", "6",
        "--chunk-min", "16384",
        "--chunk-max", "65536",
        "--seed", "7",
        "--json",
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=stack.root, env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    report = json.loads(done.stdout)
    print(f"[e2e] edge loadtest: {json.dumps(report)}")

    assert report["errors"] == 0, report["errors_by_status"]
    assert report["requests"] > 0
    assert set(report["statuses"]) <= {"200", "206"}, report["statuses"]
    # Every track was fetched before by the other e2e tests or early in this run: the
    # edge answers from its cache.
    assert report["x_cache"].get("HIT", 0) > 0, report["x_cache"]

    name = f"edge loadtest ({DURATION_S} s, 6 listeners, 16-64 KiB ranges)"
    record_figure(
        name,
        f"{report['requests_per_s']} req/s, {report['mb_per_s']} MB/s, "
        f"p99 {report['latency_ms']['p99']} ms, hit ratio {report['hit_ratio']}",
    )
