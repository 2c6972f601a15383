"""The test-suite's own helpers: deadlines that name what they waited for, ports that retry."""

from __future__ import annotations

import socket
import sys

import httpx
import pytest

from tests.support import servers
from tests.support.servers import PortInUse, ServerProcess, free_port, on_free_port
from tests.support.waiting import WaitTimeout, wait_for, wait_for_async


def test_wait_for_returns_the_value_that_held():
    calls = iter([None, 0, "ready"])
    assert wait_for(lambda: next(calls), what="the third call", timeout=5) == "ready"


def test_wait_for_names_what_it_waited_for_and_the_state_it_saw():
    with pytest.raises(WaitTimeout, match=r"after 0.05 s waiting for the moon; phase: new"):
        wait_for(lambda: False, what="the moon", timeout=0.05, detail=lambda: "phase: new")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_wait_for_async_takes_coroutine_predicates(anyio_backend):
    seen = []

    async def third_time() -> bool:
        seen.append(1)
        return len(seen) >= 3

    assert await wait_for_async(third_time, what="three polls", timeout=5)
    with pytest.raises(WaitTimeout, match="waiting for never"):
        await wait_for_async(lambda: False, what="never", timeout=0.05)


def test_free_port_never_hands_out_a_port_twice():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50


def test_a_server_that_lost_its_port_is_started_again_on_another(monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        offered = iter([taken])
        real = servers.free_port
        monkeypatch.setattr(servers, "free_port", lambda: next(offered, None) or real())
        tried: list[int] = []

        def start(port: int) -> tuple[ServerProcess, int]:
            tried.append(port)
            proc = ServerProcess(
                "http.server",
                [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            )
            # Over HTTP: the holder accepts connections too, but never answers.
            url = f"http://127.0.0.1:{port}/"
            proc.wait_until(lambda: httpx.get(url, timeout=0.2).status_code == 200, timeout=30)
            return proc, port

        proc, port = on_free_port(start)
        try:
            assert tried == [taken, port] and port != taken
        finally:
            proc.stop()


def test_port_in_use_is_raised_after_the_last_attempt():
    def start(port: int) -> None:
        raise PortInUse(f"{port} taken")

    with pytest.raises(PortInUse):
        on_free_port(start, attempts=2)


def test_servers_started_by_tests_never_see_a_developers_own_settings(monkeypatch):
    monkeypatch.setenv("DELIVERY_DATABASE_URL", "postgresql://a-developers-own/db")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/a-developers-own")
    monkeypatch.setenv("AUDIOCDN_TEST_UNRELATED", "kept")
    names = ["DELIVERY_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "AUDIOCDN_TEST_UNRELATED"]
    names.append("EDGE_GIVEN")
    show = f"import os; print([os.environ.get(n) for n in {names!r}])"
    with ServerProcess("env", [sys.executable, "-c", show], env={"EDGE_GIVEN": "yes"}) as proc:
        wait_for(lambda: proc.proc.poll() is not None, what="the child to exit", timeout=30)
        assert proc.log().strip() == "[None, None, 'kept', 'yes']"
    env = servers.part_env("DELIVERY_", DELIVERY_PORT="1")
    assert "PROMETHEUS_MULTIPROC_DIR" not in env and "DELIVERY_DATABASE_URL" not in env
    assert env["DELIVERY_PORT"] == "1"
