"""The whole stack as real processes: a small catalogue, origin, edge and delivery.

Everything lives in one temporary working directory, so the parts' ``./data``
defaults never touch the repository's ``./data``:

    root/src/*.flac, catalog.csv   synthesized with scripts.demo_catalog
    root/store/                    file:// store the encoder writes and origin serves
    root/data/                     delivery's database, dev secrets, signing keys; edge cache
    root/edge-access.log           the edge's JSON access log (one line per response)

Each server is a :class:`tests.support.servers.ServerProcess` on a free port,
stopped by its pid. :attr:`Stack.timings` records how long each step took (the
e2e conftest prints them at the end of the session).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.signing_keys import ensure_dev_keypair
from scripts.demo_catalog import DEMO_TRACKS, DemoTrack, write_catalog
from tests.support.servers import VENV_BIN, PortInUse, ServerProcess, on_free_port, part_env
from tests.support.waiting import wait_for

# Short versions of three demo tracks: long enough to seek around in a browser, short
# enough that rendering and encoding them takes a few seconds.
E2E_SECONDS = {"demo-sunrise": 20, "demo-night-drive": 12, "demo-cafe": 12}
PARTS_PREFIXES = ("DELIVERY_", "EDGE_", "ORIGIN_", "ENCODER_")


@dataclass(frozen=True)
class Published:
    track_id: str
    version: str
    title: str
    artist: str
    duration_s: float  # the manifest's (what delivery answers as duration_s)


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    store_url: str
    origin_url: str = ""
    edge_url: str = ""
    delivery_url: str = ""
    edge_log: Path = Path()
    tracks: dict[str, Published] = field(default_factory=dict)
    procs: dict[str, ServerProcess] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    # -- helpers for tests -------------------------------------------------------------

    def cli(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run one of the project's console scripts in the stack's directory and env."""
        done = subprocess.run(
            [str(VENV_BIN / argv[0]), *argv[1:]],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def user_token(self, user: str) -> str:
        """A user JWT from ``delivery token`` (the tier comes from the database)."""
        return self.cli("delivery", "token", "--user", user, "--ttl", "1h").stdout.strip()

    def stream(self, token: str, track_id: str, quality: str = "auto") -> dict:
        r = httpx.get(
            f"{self.delivery_url}/v1/tracks/{track_id}/stream",
            params={"quality": quality},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def edge_access(self) -> list[dict]:
        """The edge's access-log lines so far (it flushes every 250 ms)."""
        if not self.edge_log.exists():
            return []
        lines = self.edge_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_edge_access(
        self, predicate, timeout: float = 5.0, what: str = "a matching edge access-log line"
    ) -> list[dict]:
        """Access-log lines matching ``predicate``, waiting out the log's flush interval
        (fails after ``timeout`` s, showing the log's last lines)."""
        return wait_for(
            lambda: [e for e in self.edge_access() if predicate(e)],
            what=what,
            timeout=timeout,
            detail=lambda: f"last lines: {self.edge_access()[-10:]}",
        )

    def flush_edge_access(self, timeout: float = 5.0) -> None:
        """Wait until every response the edge sent so far is in its access log.

        The log is written in order, so once the line of a marker request made now
        appears, all earlier lines are there too. The marker is a request without a
        token for an object nobody streams (its 403 line names that path only).
        """
        marker = f"flush-{secrets.token_hex(8)}"
        httpx.get(
            f"{self.edge_url}/tracks/flush-marker/0000000000000000/96.ogg",
            headers={"X-Request-Id": marker},
            timeout=10,
        )
        self.wait_edge_access(
            lambda e: e.get("request_id") == marker,
            timeout=timeout,
            what="the edge to write its access log up to a marker request",
        )

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()


def _clean_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PARTS_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env["ENCODER_WORK_DIR"] = str(root / "work")
    return env


def _short(track: DemoTrack) -> DemoTrack:
    return dataclasses.replace(track, seconds=E2E_SECONDS[track.track_id])


def build_catalog(stack: Stack) -> None:
    """Render the short demo tracks and publish them with ``encoder batch``."""
    t0 = time.perf_counter()
    src = stack.root / "src"
    tracks = [_short(t) for t in DEMO_TRACKS if t.track_id in E2E_SECONDS]
    catalog = write_catalog(tracks, src, src / "catalog.csv")
    stack.timings["catalogue render (3 tracks)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = stack.cli(
        "encoder", "batch", str(catalog), "--store", stack.store_url, "--json", "--jobs", "2",
        timeout=300,
    )  # fmt: skip
    stack.timings["encoder batch (3 tracks x 3 renditions)"] = time.perf_counter() - t0
    summary = json.loads(out.stdout)
    assert summary["counts"].get("failed", 0) == 0, summary

    from origin.manifest import Manifest  # read back what was published, as delivery will
    from origin.store import open_store

    store = open_store(stack.store_url)
    for item in summary["items"]:
        track_id, version = item["track_id"], item["version"]
        manifest = Manifest.from_json(store.get_bytes(f"tracks/{track_id}/{version}/manifest.json"))
        stack.tracks[track_id] = Published(
            track_id,
            version,
            manifest.tags.get("title", ""),
            manifest.tags.get("artist", ""),
            manifest.source.duration_s,
        )


def _spawn(stack: Stack, name: str, argv: list[str], env: dict) -> float:
    stack.procs[name] = ServerProcess(f"e2e-{name}", argv, env=env, cwd=stack.root)
    return time.perf_counter()


def _wait_healthy(stack: Stack, name: str, url: str, spawned: float) -> None:
    stack.procs[name].wait_http(f"{url}/healthz", timeout=90)
    stack.timings[f"{name} start-up (spawn to /healthz 200)"] = time.perf_counter() - spawned


def start_stack(root: Path) -> Stack:
    """Catalogue, then origin -> edge -> delivery, each waited for. On any failure the
    servers already started are stopped before the error propagates."""
    root.mkdir(parents=True, exist_ok=True)
    stack = Stack(root=root, env=_clean_env(root), store_url=f"file://{root / 'store'}")
    try:
        _start(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start(stack: Stack) -> None:
    root = stack.root
    started = time.perf_counter()
    build_catalog(stack)

    t0 = time.perf_counter()
    pull_token = secrets.token_hex(24)
    keys_dir = root / "data" / "keys"
    private_key, public_key = ensure_dev_keypair(keys_dir)
    bin_ = str(VENV_BIN)

    def servers(origin_port: int, edge_port: int, delivery_port: int) -> None:
        """Origin, edge and delivery on these ports; all stopped again if one cannot bind
        its port (PortInUse: on_free_port then retries on other ports)."""
        ports = {"origin": origin_port, "edge": edge_port, "delivery": delivery_port}
        try:
            _servers(ports)
        except PortInUse:
            stack.stop()
            stack.procs.clear()
            raise

    def _servers(ports: dict[str, int]) -> None:
        stack.origin_url = f"http://127.0.0.1:{ports['origin']}"
        stack.edge_url = f"http://127.0.0.1:{ports['edge']}"
        stack.delivery_url = f"http://127.0.0.1:{ports['delivery']}"
        stack.edge_log = root / "edge-access.log"

        origin_spawned = _spawn(
            stack,
            "origin",
            [f"{bin_}/origin", "serve", "--port", str(ports["origin"])],
            {**stack.env, "ORIGIN_STORE": stack.store_url, "ORIGIN_PULL_TOKEN": pull_token},
        )
        edge_spawned = _spawn(
            stack,
            "edge",
            [f"{bin_}/edge", "serve", "--port", str(ports["edge"])],
            {
                **stack.env,
                "EDGE_UPSTREAM": stack.origin_url,
                "EDGE_PULL_TOKEN": pull_token,
                "EDGE_TOKEN_PUBLIC_KEYS": str(public_key),
                "EDGE_CACHE_DIR": str(root / "data" / "edge-cache"),
                "EDGE_ACCESS_LOG": str(stack.edge_log),
                "EDGE_DEV_MODE": "false",
            },
        )
        stack.env.update(
            DELIVERY_STORE=stack.store_url,
            DELIVERY_EDGE_URL=stack.edge_url,
            DELIVERY_DATA_DIR=str(root / "data"),
            DELIVERY_DATABASE_URL=f"sqlite:///{root / 'data' / 'delivery.db'}",
            DELIVERY_SIGNING_KEY_FILE=str(private_key),
            DELIVERY_DEV_MODE="true",
            DELIVERY_ACCESS_LOG="false",
        )
        # While origin and edge start: the demo users' tiers and the search index, with the
        # same commands `make run` uses (one after the other: each migrates the database).
        t1 = time.perf_counter()
        stack.cli("delivery", "users", "set-tier", "free-user", "free")
        stack.cli("delivery", "users", "set-tier", "premium-user", "premium")
        stack.cli("delivery", "catalog", "sync")
        stack.timings["delivery CLI set-up (2 x users set-tier, catalog sync)"] = (
            time.perf_counter() - t1
        )
        _wait_healthy(stack, "origin", stack.origin_url, origin_spawned)
        _wait_healthy(stack, "edge", stack.edge_url, edge_spawned)
        delivery_spawned = _spawn(
            stack,
            "delivery",
            [f"{bin_}/delivery", "serve", "--port", str(ports["delivery"])],
            stack.env,
        )
        _wait_healthy(stack, "delivery", stack.delivery_url, delivery_spawned)

    on_free_port(servers, count=3)
    stack.timings["servers start-up (origin+edge+delivery, incl. CLI set-up)"] = (
        time.perf_counter() - t0
    )
    stack.timings["stack start-up total (catalogue + ingest + servers)"] = (
        time.perf_counter() - started
    )


# -- `make run`'s runner (scripts.run_stack) -----------------------------------------------


def run_stack_env(ports: dict[str, int], **settings: str) -> dict[str, str]:
    """The environment for ``python -m scripts.run_stack`` (what `make run` runs) on
    ``ports``: this process's, less the parts' and the runner's own variables, the
    repository importable, the three ports and ``settings`` on top."""
    return part_env(
        (*PARTS_PREFIXES, "STACK_"),
        STACK_ORIGIN_PORT=str(ports["origin"]),
        STACK_EDGE_PORT=str(ports["edge"]),
        STACK_DELIVERY_PORT=str(ports["delivery"]),
        **settings,
    )


def start_run_stack(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m scripts.run_stack`` in ``cwd`` and its own session, its output (stderr
    too) on a text pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.run_stack"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
