"""`make run`: the whole stack on embedded defaults, on one machine.

1. dev keys and secrets (generated once, mode 0600, under ./data),
2. a synthesized demo catalogue (rendered once, cached under ./data/demo),
3. ingest with the encoder into file://./data/origin (a no-op when already published),
4. origin :8090, edge :8080 (upstream = origin), delivery :8000 (signer = edge, SQLite),
5. demo users free-user / premium-user, the search index synced,
6. prints what to try next; Ctrl-C stops all three.

Running it twice reuses ./data: nothing is re-encoded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from scripts.demo_catalog import build_catalog

BIN = Path(sys.executable).parent
DATA = Path("data")
HOST = os.environ.get("STACK_HOST", "127.0.0.1")
PORTS = {
    "origin": int(os.environ.get("STACK_ORIGIN_PORT", "8090")),
    "edge": int(os.environ.get("STACK_EDGE_PORT", "8080")),
    "delivery": int(os.environ.get("STACK_DELIVERY_PORT", "8000")),
}
PORT_VARIABLES = {
    "origin": "STACK_ORIGIN_PORT",
    "edge": "STACK_EDGE_PORT",
    "delivery": "STACK_DELIVERY_PORT",
}


def log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], check=True, **kwargs)


def stack_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ORIGIN_STORE", "file://./data/origin")
    env.setdefault("ENCODER_STORE", env["ORIGIN_STORE"])
    env.setdefault("EDGE_UPSTREAM", f"http://{HOST}:{PORTS['origin']}")
    env.setdefault("DELIVERY_STORE", "file://./data/origin")
    env.setdefault("DELIVERY_EDGE_URL", f"http://{HOST}:{PORTS['edge']}")
    # Dev mode is opt-in in every part; `make run` is the development stack, so it opts in
    # (explicitly: the dev keys and secrets it prints a token for only exist in dev mode).
    env["DELIVERY_DEV_MODE"] = "true"
    env["EDGE_DEV_MODE"] = "true"
    return env


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port``, or it cannot be bound."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False  # a bad STACK_HOST: the servers say so themselves
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as client:
            client.settimeout(1.0)
            if client.connect_ex(address) == 0:
                return True
        with socket.socket(family, kind, proto) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                server.bind(address)
            except OSError:
                return True
    return False


def describe_listener(host: str, port: int) -> str:
    """Who holds the port: one of our servers (an earlier `make run`) or another program."""
    try:
        answer = httpx.get(f"http://{host}:{port}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return "another program"
    if isinstance(answer, dict) and answer.get("status") in ("ok", "ready"):
        return "a server answering /healthz like ours (an earlier `make run` still running?)"
    return "another program"


def check_ports() -> str | None:
    """The one-line reason the stack cannot start on its ports, or None when they are free."""
    overrides = ", ".join(PORT_VARIABLES.values())
    names = {}
    for name, port in PORTS.items():
        if port in names:
            return (
                f"{name} and {names[port]} are both set to port {port}; "
                f"give each its own port with {overrides}"
            )
        names[port] = name
    for name, port in PORTS.items():
        if port_in_use(HOST, port):
            return (
                f"port {port} ({name}) on {HOST} is already in use by "
                f"{describe_listener(HOST, port)}; stop it, or choose free ports with "
                f"{overrides} (and STACK_HOST for the address)"
            )
    return None


class Stack:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.procs[name] = subprocess.Popen(
            [str(BIN / argv[0]), *argv[1:]], env=env, start_new_session=True
        )

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        url = f"http://{HOST}:{PORTS[name]}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with status {proc.returncode}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{name} did not answer {url} within {timeout:.0f}s")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log(f"{name} stopped")


def main() -> int:
    problem = check_ports()
    if problem:  # before anything starts: a health check would reach that program instead
        print(f"[make run] error: {problem}", file=sys.stderr, flush=True)
        return 1
    env = stack_env()
    DATA.mkdir(exist_ok=True)
    log("rendering the demo catalogue (cached after the first run)")
    catalog = build_catalog(DATA / "demo")
    log("ingesting it into file://./data/origin")
    run(["encoder", "batch", str(catalog), "--store", env["ORIGIN_STORE"]], env=env)
    stack = Stack()
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start("origin", ["origin", "serve", "--port", str(PORTS["origin"])], env)
        stack.wait_healthy("origin")
        stack.start("edge", ["edge", "serve", "--port", str(PORTS["edge"])], env)
        stack.wait_healthy("edge")
        run(["delivery", "users", "set-tier", "free-user", "free"], env=env)
        run(["delivery", "users", "set-tier", "premium-user", "premium"], env=env)
        run(["delivery", "catalog", "sync"], env=env)
        stack.start("delivery", ["delivery", "serve", "--port", str(PORTS["delivery"])], env)
        stack.wait_healthy("delivery")
        token = run(
            ["delivery", "token", "--user", "premium-user", "--tier", "premium", "--ttl", "12h"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()
        delivery = f"http://{HOST}:{PORTS['delivery']}"
        stream = f"{delivery}/v1/tracks/demo-sunrise/stream"
        pick_url = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"url\"])'"
        lines = [
            "",
            f"ready: origin {HOST}:{PORTS['origin']}, edge {HOST}:{PORTS['edge']}, "
            f"delivery {HOST}:{PORTS['delivery']}",
            "",
            f"  player:   {delivery}/player",
            f"  API docs: {delivery}/docs",
            "",
            "  # a stream URL for the premium demo user (token valid 12 h):",
            f"  TOKEN={token}",
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{stream}?quality=high'; echo",
            "  # then fetch the returned url through the edge:",
            f"  URL=$(curl -s -H \"Authorization: Bearer $TOKEN\" '{stream}' | {pick_url})",
            "  curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\\n' \"$URL\"",
            "",
            "Ctrl-C stops all three.",
        ]
        print("\n".join(lines), flush=True)
        while not stopping:
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    log(f"{name} exited with status {proc.returncode}; stopping the stack")
                    stopping = True
            time.sleep(0.5)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
