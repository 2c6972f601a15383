"""``WEB_CONCURRENCY`` (set by hosting platforms) is honoured as the worker count, never a crash.

uvicorn reads the variable on its own when ``workers`` is not passed and then
refuses an application object (exit status 3); each part passes ``workers``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.workers import web_concurrency
from tests.support.servers import VENV_BIN, ServerProcess, on_free_port, part_env
from tests.support.waiting import wait_for


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 1), ("3", 3), (" 2 ", 2), ("abc", 1), ("0", 1), ("999", 1)]
)
def test_web_concurrency_values(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", value)
    assert web_concurrency() == expected


def test_the_parts_own_setting_wins(monkeypatch):
    from delivery.settings import DeliverySettings
    from edge.settings import EdgeSettings

    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert DeliverySettings(dev_mode=True).workers == 3
    assert EdgeSettings().workers == 3
    monkeypatch.setenv("DELIVERY_WORKERS", "2")
    assert DeliverySettings(dev_mode=True).workers == 2


def children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


def _serve(name: str, argv: list[str], env: dict[str, str], cwd: Path, health: str):
    def start(port: int) -> tuple[ServerProcess, str]:
        run_env = {**env, f"{name.upper()}_PORT": str(port), "WEB_CONCURRENCY": "2"}
        server = ServerProcess(name, argv, env=run_env, cwd=cwd)
        base = f"http://127.0.0.1:{port}"
        server.wait_http(base + health, timeout=60)
        return server, base

    return on_free_port(start)


@pytest.mark.slow
def test_delivery_serve_runs_web_concurrency_workers(tmp_path):
    env = part_env(
        "DELIVERY_",
        DELIVERY_DEV_MODE="true",
        DELIVERY_DATA_DIR=str(tmp_path / "data"),
        DELIVERY_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'delivery.db'}",
        DELIVERY_STORE=(tmp_path / "origin").as_uri(),
        DELIVERY_LOG_LEVEL="warning",
    )
    (tmp_path / "origin").mkdir()
    server, _ = _serve("delivery", [sys.executable, "-m", "delivery", "serve"], env, tmp_path,
                       "/healthz")  # fmt: skip
    try:
        # uvicorn's supervisor: two worker processes (plus, at most, a resource tracker).
        wait_for(
            lambda: len(children(server.pid)) >= 2,
            what="uvicorn to start two worker processes",
            timeout=30,
            detail=server.log,
        )
    finally:
        server.stop()


def test_origin_serve_ignores_web_concurrency(tmp_path):
    env = part_env(
        "ORIGIN_",
        ORIGIN_STORE=(tmp_path / "store").as_uri(),
        ORIGIN_PULL_TOKEN="a-long-enough-pull-token-123",
        ORIGIN_LOG_LEVEL="warning",
    )
    (tmp_path / "store").mkdir()
    server, _ = _serve("origin", [str(VENV_BIN / "origin"), "serve"], env, tmp_path, "/healthz")
    server.stop()
