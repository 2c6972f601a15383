"""`make run` when a port is taken: one line naming the port and the variables that move it,
a non-zero exit, and nothing started. (It used to reach the other program's /healthz,
print "ready" and a token, then exit 0.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.stack import run_stack_env, start_run_stack
from tests.support.http_stub import QuietHandler, StubServer
from tests.support.servers import free_port

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`


class _Healthy(QuietHandler):
    """Some other program that answers every GET with 200, /healthz included."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_body(200, b'{"status": "ok"}')


def _run_stack(cwd: Path, ports: dict[str, int], timeout: float = 60) -> tuple[int, str]:
    proc = start_run_stack(cwd, run_stack_env(ports))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # a stack that started anyway: stop it as Ctrl-C would
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail("the runner did not stop on a taken port:\n" + out[-3000:])
    return proc.returncode, out


@pytest.fixture
def ports() -> dict[str, int]:
    return {"origin": free_port(), "edge": free_port(), "delivery": free_port()}


@pytest.mark.parametrize("part", ["origin", "edge", "delivery"])
def test_a_port_held_by_an_http_server_stops_make_run_with_one_line(tmp_path, ports, part):
    with StubServer(_Healthy, ports[part]):
        code, out = _run_stack(tmp_path, ports)
    assert code != 0, out
    assert "ready:" not in out and "TOKEN=" not in out
    errors = [line for line in out.splitlines() if "error" in line]
    assert len(errors) == 1, out
    variable = f"STACK_{part.upper()}_PORT"
    assert f"port {ports[part]} ({part})" in errors[0] and variable in errors[0]
    assert "STACK_ORIGIN_PORT" in errors[0] and "STACK_DELIVERY_PORT" in errors[0]
    assert not (tmp_path / "data").exists()  # nothing rendered, ingested or started


def test_a_port_held_by_a_plain_socket_stops_make_run(tmp_path, ports):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports["edge"]))
        holder.listen()
        code, out = _run_stack(tmp_path, ports)
    assert code != 0, out
    assert f"port {ports['edge']} (edge)" in out and "another program" in out
    assert "ready:" not in out


def test_make_run_turns_dev_mode_on_for_delivery_and_edge(monkeypatch):
    from scripts import run_stack

    monkeypatch.setenv("DELIVERY_DEV_MODE", "false")
    monkeypatch.delenv("EDGE_DEV_MODE", raising=False)
    env = run_stack.stack_env()
    assert env["DELIVERY_DEV_MODE"] == "true" and env["EDGE_DEV_MODE"] == "true"
