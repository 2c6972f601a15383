"""`make run` as a user meets it: the stack runner reaches "ready", the printed curl lines work
as printed, Ctrl-C stops all three servers, and a second run re-encodes nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Runner:
    """``python -m scripts.run_stack`` in its own directory, output collected line by line."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_stack"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(marker in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {marker!r} in the output:\n" + "\n".join(self.lines[-60:]))

    def interrupt(self) -> int:
        """What Ctrl-C does: SIGINT to the runner (its servers run in their own sessions)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._reader.join(5)


@pytest.fixture
def stack_env(tmp_path):
    ports = {"origin": free_port(), "edge": free_port(), "delivery": free_port()}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STACK_ORIGIN_PORT": str(ports["origin"]),
        "STACK_EDGE_PORT": str(ports["edge"]),
        "STACK_DELIVERY_PORT": str(ports["delivery"]),
    }
    for name in list(env):
        if name.startswith(("ORIGIN_", "EDGE_", "DELIVERY_", "ENCODER_")):
            del env[name]
    return env, ports


def printed_shell(lines: list[str]) -> str:
    """The copy-paste block the runner printed, from ``TOKEN=`` to the last curl."""
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("TOKEN="))
    block = [
        line.strip()
        for line in lines[start:]
        if line.strip().startswith(("TOKEN=", "curl", "URL="))
    ]
    return "\n".join(block)


def test_make_run_serves_the_demo_and_the_printed_curls_work(tmp_path, stack_env):
    env, ports = stack_env
    runner = Runner(tmp_path, env)
    try:
        runner.wait_for("ready:")
        shell = printed_shell(runner.lines)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", shell], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        first, _, last = result.stdout.strip().partition("\n")
        answer = json.loads(first)
        assert (answer["bitrate_kbps"], answer["capped"]) == (320, False)
        status, size, unit = last.split()[-3:]
        assert (status, unit) == ("200", "bytes") and int(size) > 10_000
        player = httpx.get(f"http://127.0.0.1:{ports['delivery']}/player", timeout=10)
        assert player.status_code == 200 and "<audio" in player.text
    finally:
        code = runner.interrupt()
    assert code == 0, "\n".join(runner.lines[-40:])
    assert sum("stopped" in line for line in runner.lines) == 3
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    for secret in (tmp_path / "data" / "secrets").iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret

    again = Runner(tmp_path, env)
    try:
        again.wait_for("ready:")
    finally:
        again.interrupt()
    summary = next(line for line in again.lines if re.search(r"\d+ items:", line))
    assert "0 published" in summary and "4 already published" in summary
