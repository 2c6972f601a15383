"""`make run` as a user meets it (the "Done when" lines of issues 2, 5 and 7, on the runner itself):
the stack reaches "ready"; the printed curl lines work as printed; the origin answers a ranged
pull with its token and 401 without; a track plays in Chromium; `edge loadtest` runs 30 s with
zero errors; Ctrl-C stops all three servers; a second run re-encodes nothing.

The tests share one running stack (a module fixture) and do not depend on their order: the
Ctrl-C test stops it and leaves its second run serving in its place, on the same ports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.e2e.stack import run_stack_env, start_run_stack
from tests.e2e.test_browser import AUDIO, search, sign_in, wait_js
from tests.support.servers import PortInUse, on_free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`
BIN = Path(sys.executable).parent


class Runner:
    """``python -m scripts.run_stack`` in its own directory, output collected line by line."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = start_run_stack(cwd, env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        """Until ``marker`` is printed; PortInUse when a port was taken, AssertionError when
        the runner exits or ``timeout`` passes first."""

        def printed() -> bool:
            if any(marker in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any("already in use" in line for line in self.lines):
                    raise PortInUse(self.output())
                raise AssertionError(f"exited before printing {marker!r}:\n{self.output()}")
            return False

        wait_for(printed, what=f"{marker!r} in the output", timeout=timeout, detail=self.output)

    def interrupt(self) -> int:
        """What Ctrl-C does: SIGINT to the runner (its servers run in their own sessions)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._reader.join(5)


@dataclass
class MakeRun:
    root: Path
    env: dict[str, str]
    ports: dict[str, int]
    runner: Runner

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("make-run")

    def start(origin: int, edge: int, delivery: int) -> MakeRun:
        ports = {"origin": origin, "edge": edge, "delivery": delivery}
        env = run_stack_env(
            ports,
            # The loadtest below makes ~10^5 requests: keep their access lines out of the pipe.
            EDGE_ACCESS_LOG=str(root / "edge-access.log"),
            # `make run` turns dev mode on for its servers; the tests' own `delivery token`
            # calls (dev secrets under ./data) need it too, now that it is off by default.
            DELIVERY_DEV_MODE="true",
        )
        runner = Runner(root, env)
        try:
            runner.wait_for("ready:")
        except BaseException:
            if runner.proc.poll() is None:
                runner.interrupt()
            raise
        return MakeRun(root, env, ports, runner)

    run = on_free_port(start, count=3)
    try:
        yield run
    finally:
        if run.runner.proc.poll() is None:  # the runner serving now (see the Ctrl-C test)
            run.runner.interrupt()


def printed_shell(lines: list[str]) -> str:
    """The copy-paste block the runner printed, from ``TOKEN=`` to the last curl."""
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("TOKEN="))
    wanted = ("TOKEN=", "curl", "URL=")
    return "\n".join(line.strip() for line in lines[start:] if line.strip().startswith(wanted))


def test_the_printed_curl_lines_work_as_printed(make_run):
    shell = printed_shell(make_run.runner.lines)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    first, _, last = result.stdout.strip().partition("\n")
    answer = json.loads(first)
    assert (answer["bitrate_kbps"], answer["capped"]) == (320, False)
    status, size, unit = last.split()[-3:]
    assert (status, unit) == ("200", "bytes") and int(size) > 10_000


def test_origin_answers_a_ranged_pull_with_the_token_and_401_without(make_run):
    token = (make_run.root / "data" / "secrets" / "pull-token").read_text().strip()
    key = next(
        p.relative_to(make_run.root / "data" / "origin").as_posix()
        for p in sorted((make_run.root / "data" / "origin").rglob("160.ogg"))
    )
    url = f"{make_run.url('origin')}/{key}"
    curl = ["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code} %{size_download}", "-r", "0-99"]
    with_token = subprocess.run(
        [*curl, "-H", f"Authorization: Bearer {token}", url], capture_output=True, timeout=30
    )
    without = subprocess.run([*curl, url], capture_output=True, timeout=30)
    assert with_token.stdout.decode() == "206 100"
    assert with_token.stderr == (make_run.root / "data" / "origin" / key).read_bytes()[:100]
    assert without.stdout.decode().split()[0] == "401"


def test_a_track_plays_in_the_browser(make_run, browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        sign_in(page, SimpleNamespace(delivery_url=make_run.url("delivery")), "premium-user")
        search(page, "sunrise", "demo-sunrise")
        page.click('#results li[data-track-id="demo-sunrise"] button.play')
        wait_js(page, f"{AUDIO}.currentTime > 1.0", what="playback to advance")
        assert page.inner_text("#now-bitrate") == "320 kbps"
        assert page.evaluate(f"{AUDIO}.currentSrc").startswith(make_run.url("edge") + "/tracks/")
    finally:
        context.close()


def test_edge_loadtest_runs_30_s_against_the_stack_with_zero_errors(make_run):
    token = subprocess.run(
        [str(BIN / "delivery"), "token", "--user", "premium-user", "--tier", "premium",
         "--ttl", "1h"],
        cwd=make_run.root, env=make_run.env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    result = subprocess.run(
        [str(BIN / "edge"), "loadtest", "--edge", make_run.url("edge"),
         "--delivery", make_run.url("delivery"), "--user-token", token,
         "--tracks", "demo-sunrise", "demo-night-drive", "demo-cafe", "demo-edge-case",
         "--duration", "30", "--listeners", "16", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0, report["errors_by_status"]
    assert report["requests"] > 1000 and report["duration_s"] >= 29
    assert set(report["statuses"]) <= {"200", "206"}


def test_ctrl_c_stops_all_three_and_a_second_run_reencodes_nothing(make_run):
    code = make_run.runner.interrupt()
    lines = make_run.runner.lines
    assert code == 0, "\n".join(lines[-40:])
    assert sum("stopped" in line for line in lines) == 3
    for port in make_run.ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    for secret in (make_run.root / "data" / "secrets").iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret

    # The second run serves in place of the first (same ports and ./data), so the
    # other tests find the stack running whether they come before or after this one.
    again = make_run.runner = Runner(make_run.root, make_run.env)
    again.wait_for("ready:")
    summary = next(line for line in again.lines if re.search(r"\d+ items:", line))
    assert "0 published" in summary and "4 already published" in summary
