"""Start and stop real servers for tests: moto (S3), a GCS emulator, PostgreSQL, our own parts.

Every server binds 127.0.0.1 on a free port, is waited for until it answers,
and is stopped by the pid we started (process group), also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            user=user,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s:\n{self.log()}")

    def wait_http(self, url: str, timeout: float = 30.0, ok=(200,)) -> None:
        self.wait_until(lambda: httpx.get(url, timeout=2).status_code in ok, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def start_moto() -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
    )
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/moto-api/", timeout=60)
    return server, url


def start_gcs_emulator() -> tuple[ServerProcess, str]:
    port = free_port()
    exe = shutil.which("gcp-storage-emulator", path=str(VENV_BIN)) or "gcp-storage-emulator"
    server = ServerProcess(
        "gcs-emulator",
        [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
    )
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/storage/v1/b", timeout=60, ok=(200, 400, 401, 404))
    return server, url


def postgres_bin_dir() -> Path:
    base = Path("/usr/lib/postgresql")
    versions = sorted((p for p in base.glob("*/bin") if (p / "initdb").exists()), reverse=True)
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make deps` (apt-get install postgresql)"
        )
    return versions[0]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port; yields its URL (user ``test``, db ``test``).

    initdb and postgres refuse to run as root, so when we are root they run as ``postgres``.
    """
    bindir = postgres_bin_dir()
    datadir = Path(tempfile.mkdtemp(prefix="pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(datadir, user=user, group=user)
    port = free_port()
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir / "data"),
            "-A",
            "trust",
            "-U",
            "test",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        user=user,
        cwd="/",
    )
    server = ServerProcess(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(datadir / "data"),
            "-p",
            str(port),
            "-k",
            str(datadir),
            "-h",
            "127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        user=user,
        cwd="/",
    )
    url = f"postgresql://test@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        def ready() -> bool:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True

        server.wait_until(ready, timeout=60)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")
        yield f"postgresql://test@127.0.0.1:{port}/test"
    finally:
        server.stop()
        shutil.rmtree(datadir, ignore_errors=True)
