"""Start and stop real servers for tests: moto (S3), a GCS emulator, PostgreSQL, our own parts.

Every server binds 127.0.0.1 on a free port, is waited for until it answers,
and is stopped by the pid we started (process group), also when a test fails.

Ports: most of these servers (PostgreSQL, nginx, moto, the GCS emulator) cannot
bind port 0 and report it, so :func:`free_port` hands out a port that is
bindable now, never the same one twice in this process, and taken from below
the kernel's ephemeral range, where no client socket (ours or another
program's) is given a port meanwhile. What is left of the race (another process
binding that very port first) ends in ``EADDRINUSE``: :class:`ServerProcess`
reports it as :class:`PortInUse`, and :func:`on_free_port` starts the server
again on another port.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support.waiting import wait_for

VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")

_LOWEST_PORT = 15000
_handed_out: set[int] = set()
_ports_lock = threading.Lock()


class PortInUse(RuntimeError):
    """A server could not bind its port: someone else took it after :func:`free_port`."""


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now, never handed out before by this process.

    For a server to bind (through :func:`on_free_port`, which retries on
    ``EADDRINUSE``) or as an address where nothing answers.
    """
    low, high = _LOWEST_PORT, _ephemeral_low()
    with _ports_lock:
        if high - low >= 1000:
            for _ in range(1000):
                port = random.randrange(low, high)  # noqa: S311 - not a secret
                if port not in _handed_out and _bindable(port):
                    _handed_out.add(port)
                    return port
        # The ephemeral range starts too low to stay out of it: let the kernel pick.
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free loopback port found")


def on_free_port(start: Callable[..., T], *, count: int = 1, attempts: int = 3) -> T:
    """``start(port)`` on a :func:`free_port` (``start(p1, p2, ...)`` with ``count`` ports),
    again on other ports when it raises :class:`PortInUse` (a port was taken between
    choosing and binding it)."""
    for attempt in range(1, attempts + 1):
        try:
            return start(*(free_port() for _ in range(count)))
        except PortInUse:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _lost_its_port(log: str) -> bool:
    text = log.lower()
    return "address already in use" in text or "errno 98" in text


# The settings of our parts, and what serving reads besides them: a developer's own
# values (a DELIVERY_DATABASE_URL exported in the shell, say) must never reach a server a
# test starts, which gets exactly what the test gives it on top of the rest of the
# environment.
OUR_PREFIXES = ("ORIGIN_", "EDGE_", "DELIVERY_", "ENCODER_", "STACK_")
OUR_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY")


def clean_environ() -> dict[str, str]:
    """This process's environment without our parts' settings (:data:`OUR_PREFIXES`,
    :data:`OUR_VARIABLES`)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(OUR_PREFIXES) and k not in OUR_VARIABLES
    }


class ServerProcess:
    """A child process in its own process group, with its output in a log file; its
    environment is :func:`clean_environ` with ``env`` on top."""

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
        full_env = {**clean_environ(), **(env or {})}
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
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Until ``ready()`` is true (its exceptions count as "not yet").

        Raises :class:`PortInUse` when the process exited because its port was
        taken, RuntimeError when it exited otherwise or is not ready in time
        (stopped then); both carry the process's log.
        """

        def check() -> bool:
            if self.proc.poll() is not None:
                log = self.log()
                self.stop()
                error = PortInUse if _lost_its_port(log) else RuntimeError
                raise error(f"{self.name} exited with {self.proc.returncode}:\n{log}")
            try:
                return bool(ready()) and self.proc.poll() is None
            except Exception:
                return False

        try:
            wait_for(check, what=f"{self.name} to become ready", timeout=timeout)
        except AssertionError:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not become ready in {timeout}s:\n{self.log()}"
            ) from None

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

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto() -> tuple[ServerProcess, str]:
    def start(port: int) -> tuple[ServerProcess, str]:
        server = ServerProcess(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        )
        url = f"http://127.0.0.1:{port}"
        server.wait_http(f"{url}/moto-api/", timeout=60)
        return server, url

    return on_free_port(start)


def start_gcs_emulator() -> tuple[ServerProcess, str]:
    exe = shutil.which("gcp-storage-emulator", path=str(VENV_BIN)) or "gcp-storage-emulator"

    def start(port: int) -> tuple[ServerProcess, str]:
        server = ServerProcess(
            "gcs-emulator",
            [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        )
        url = f"http://127.0.0.1:{port}"
        server.wait_http(f"{url}/storage/v1/b", timeout=60, ok=(200, 400, 401, 404))
        return server, url

    return on_free_port(start)


@contextlib.contextmanager
def _serving_in(workdir: Path, start: Callable[[int], tuple[ServerProcess, int]]) -> Iterator[int]:
    """``start(port)`` on a free port (:func:`on_free_port`); yields the port, stops the
    server after the block and removes its ``workdir``, also when starting it failed."""
    try:
        server, port = on_free_port(start)
        with server:
            yield port
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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
    import psycopg

    def start(port: int) -> tuple[ServerProcess, int]:
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

        def ready() -> bool:
            with psycopg.connect(
                f"postgresql://test@127.0.0.1:{port}/postgres", connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
            return True

        server.wait_until(ready, timeout=60)
        return server, port

    with _serving_in(datadir, start) as port:
        with psycopg.connect(
            f"postgresql://test@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE test")
        yield f"postgresql://test@127.0.0.1:{port}/test"


def redis_server_binary() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run `make deps` (apt-get redis-server)")
    return exe


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis (no persistence) on a free port; yields its ``redis://`` URL."""
    exe = redis_server_binary()
    workdir = Path(tempfile.mkdtemp(prefix="redis-"))

    def start(port: int) -> tuple[ServerProcess, int]:
        server = ServerProcess(
            "redis",
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],  # fmt: skip
        )

        def ready() -> bool:
            import redis

            return bool(redis.Redis(port=port, socket_timeout=2).ping())

        server.wait_until(ready, timeout=30)
        return server, port

    with _serving_in(workdir, start) as port:
        yield f"redis://127.0.0.1:{port}/0"


REPO = Path(__file__).resolve().parents[2]


def part_env(prefixes: str | tuple[str, ...], **settings: str) -> dict[str, str]:
    """:func:`clean_environ` less every variable starting with ``prefixes`` as well, the
    repository importable, and ``settings`` on top."""
    env = {k: v for k, v in clean_environ().items() if not k.startswith(prefixes)}
    env["PYTHONPATH"] = str(REPO)
    env.update(settings)
    return env


def run_part_cli(
    module: str, args: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as a user runs it, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def serve_delivery(env: dict[str, str], cwd: Path, workers: int = 1) -> tuple[ServerProcess, str]:
    """``delivery serve`` with ``workers`` processes on a free port; (process, base URL)
    once ``/readyz`` answers."""

    def start(port: int) -> tuple[ServerProcess, str]:
        run_env = {**env, "DELIVERY_PORT": str(port), "DELIVERY_WORKERS": str(workers)}
        server = ServerProcess(
            "delivery", [sys.executable, "-m", "delivery", "serve"], env=run_env, cwd=cwd
        )
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/readyz", timeout=90)
        return server, base

    return on_free_port(start)


def serve_edge(
    env: dict[str, str], *, workers: int | None = None, cwd: Path | None = None
) -> tuple[ServerProcess, str]:
    """``edge serve`` on a free port (with ``--workers`` when given), ``env`` on top of this
    process's environment; (process, base URL) once ``/livez`` answers."""

    def start(port: int) -> tuple[ServerProcess, str]:
        argv = [str(VENV_BIN / "edge"), "serve", "--port", str(port)]
        if workers is not None:
            argv += ["--workers", str(workers)]
        server = ServerProcess("edge", argv, env=env, cwd=cwd)
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/livez")
        return server, base

    return on_free_port(start)


NGINX = Path("/usr/sbin/nginx")
_NGINX_CONF = """
worker_processes 1;
user root;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{http}
}}
"""


def nginx_process(prefix: Path, http: str) -> ServerProcess:
    """A foreground nginx living under ``prefix`` whose ``http`` block holds ``http``."""
    if not NGINX.exists():
        raise RuntimeError("nginx is not installed: run `make deps` (apt-get install nginx-light)")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(prefix=prefix, http=http))
    argv = [str(NGINX), "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
            "-g", f"daemon off; pid {prefix}/nginx.pid;"]  # fmt: skip
    return ServerProcess("nginx", argv)
