"""Benchmark: stream-URL answers per second from ONE delivery worker, edge signer.

    .venv/bin/python bench/delivery.py [--duration 8] [--connections 32] [--load wrk|httpx]
                                       [--no-fresh]

Starts one ``delivery serve`` worker (uvicorn, access log off, the default settings
but the rate limit) on a synthetic catalog of 50 tracks, then a SEPARATE load process
with 32 concurrent connections (wrk with a Lua script when installed, else an httpx
asyncio client). Runs, in one process tree:

* baseline: ``GET /healthz`` (the framework and server alone);
* stream:   ``GET /v1/tracks/{id}/stream`` from 128 users (half premium, half free; a
  quarter of them without a tier claim, so their tier comes from the users table
  through the per-worker cache) over every track and quality, each answer carrying
  2-3 signed renditions. Every user has asked for every track once before the run
  (the warm-up), and asks again every few seconds, as players do (reload, retry,
  another tab, a quality switch): within ``DELIVERY_URL_REUSE_S`` the signatures are
  reused, while the rest of each answer is made afresh. This is the goal's run;
* fresh (unless ``--no-fresh``): the same mix from a second worker started with
  ``DELIVERY_URL_REUSE_S=0``, so every answer signs every rendition (Ed25519): the
  cost of a first ask.

Each line gives answers/s, p50 and p99 (the load generator's view) and the worker's
CPU time per answer (from /proc: steadier than a rate when other work shares the
machine). Then the stream/baseline ratio and whether the goal of issue 13 holds:
>= 5,000 answers/s with p99 <= 15 ms at 32 connections. The load generator shares
the machine, so the figures are a floor, and noisy when other work runs (the load
average is printed). Use wrk: the httpx fallback tops out near 1,500 requests/s on
its own (it measures the Python client more than the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from delivery.auth import mint_user_token  # noqa: E402
from origin.local import LocalStore  # noqa: E402
from origin.manifest import Latest, Manifest  # noqa: E402

TRACKS = 50
USERS = 128
GOAL_RPS, GOAL_P99_MS = 5000, 15.0
ISSUER, AUDIENCE = "audiocdn", "audiocdn-delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_catalog(root: Path) -> list[str]:
    """Manifests only: the delivery hot path never reads the audio itself."""
    store = LocalStore(root)
    ids = []
    for i in range(TRACKS):
        track_id, version = f"bench-{i:03d}", f"{i:016x}"
        renditions = [
            {
                "bitrate_kbps": b,
                "key": f"tracks/{track_id}/{version}/{b}.ogg",
                "bytes": b * 125 * 200,
                "sha256": "0" * 64,
                "duration_s": 200.0 + i,
            }
            for b in (96, 160, 320)
        ]
        manifest = Manifest.model_validate(
            {
                "schema": 1,
                "track_id": track_id,
                "version": version,
                "created_at": "2026-01-01T00:00:00Z",
                "source": {"sha256": "0" * 64, "bytes": 1, "duration_s": 200.0 + i},
                "tags": {"title": f"Bench {i}"},
                "loudness": {
                    "integrated_lufs": -14.0,
                    "true_peak_dbtp": -1.0,
                    "track_gain_db": 0.0,
                },
                "renditions": renditions,
                "encoder": {"profile": "vorbis-96-160-320/1"},
            }
        )
        store.put_bytes(manifest.key, manifest.to_json())
        store.put_bytes(Latest.key_for(track_id), Latest.now(version).to_json())
        ids.append(track_id)
    return ids


def start_worker(
    tmp: Path, port: int, signer: str, extra: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DELIVERY_STORE=(tmp / "origin").as_uri(),
        DELIVERY_DATA_DIR=str(tmp / "data"),
        DELIVERY_DATABASE_URL=f"sqlite:///{tmp / 'data' / 'delivery.db'}",
        DELIVERY_PORT=str(port),
        DELIVERY_SIGNER=signer,
        DELIVERY_RATE_LIMIT_PER_S="0",  # measure the service, not the limiter's refusals
        DELIVERY_LOG_LEVEL="warning",
        DELIVERY_ACCESS_LOG="false",
        DELIVERY_DEV_MODE="true",  # generated secrets, read back by plan() (opt-in)
        **(extra or {}),
    )
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - lives as long as the worker
    proc = subprocess.Popen(
        [sys.executable, "-m", "delivery", "serve"],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited:\n{(tmp / 'worker.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit("worker did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def plan(tmp: Path, tracks: list[str]) -> tuple[list[str], list[str]]:
    secret = (tmp / "data" / "secrets" / "user-jwt").read_bytes().strip()
    tokens = [
        mint_user_token(
            secret,
            f"bench-user-{u}",
            ttl_s=3600,
            issuer=ISSUER,
            audience=AUDIENCE,
            # Every fourth user has no tier claim: the users table (no row: the default tier).
            extra={} if u % 4 == 0 else {"tier": "premium" if u % 2 else "free"},
        )
        for u in range(USERS)
    ]
    qualities = ("auto", "high", "normal", "low")
    paths = [
        f"/v1/tracks/{tracks[i % len(tracks)]}/stream?quality={qualities[i % len(qualities)]}"
        for i in range(len(tracks) * len(qualities))
    ]
    return tokens, paths


# -- load generators (each runs as its own process) ----------------------------------------

WRK_LUA = """
local tokens = {TOKENS}
local paths = {PATHS}
local i = 0
request = function()
  -- Every user in turn, each turn one path further: a user comes back to the same
  -- track (and quality) after #tokens * #paths requests, to the same track sooner.
  i = i + 1
  return wrk.format("GET", paths[(math.floor(i / #tokens) % #paths) + 1],
                    {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d," ..
    "\\"errors\\":%d,\\"non2xx\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def lua_list(items: list[str]) -> str:
    return "{" + ",".join(json.dumps(x) for x in items) + "}"


def run_wrk(
    url: str, tokens: list[str], paths: list[str], seconds: float, conns: int, tmp: Path
) -> dict:
    script = tmp / "load.lua"
    script.write_text(
        WRK_LUA.replace("{TOKENS}", lua_list(tokens)).replace("{PATHS}", lua_list(paths))
    )
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT ") :])
            return {
                "rps": r["requests"] / (r["duration_us"] / 1e6),
                "p50_ms": r["p50_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000,
                "errors": r["errors"],
                "non2xx": r["non2xx"],
                "requests": r["requests"],
            }
    raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")


async def _httpx_load(
    base: str, tokens: list[str], paths: list[str], seconds: float, conns: int
) -> dict:
    latencies: list[float] = []
    errors = non2xx = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        # One client (one keep-alive connection) per worker: a single shared httpx pool
        # serialises 32 concurrent requests on its lock and measures itself, not the server.
        nonlocal errors, non2xx
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as client:
            i = w
            while time.perf_counter() < stop_at:
                i += conns
                t0 = time.perf_counter()
                try:
                    r = await client.get(
                        paths[i // len(tokens) % len(paths)],  # the order of the wrk script
                        headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                non2xx += r.status_code >= 300

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conns)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": errors,
        "non2xx": non2xx,
        "requests": len(latencies),
    }


def run_httpx(
    url: str, tokens: list[str], paths: list[str], seconds: float, conns: int, tmp: Path
) -> dict:
    """Run the httpx client in a child process, so the load is a separate process."""
    job = tmp / "httpx-job.json"
    job.write_text(
        json.dumps(
            {"url": url, "tokens": tokens, "paths": paths, "seconds": seconds, "conns": conns}
        )
    )
    done = subprocess.run(
        [sys.executable, __file__, "--httpx-child", str(job)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise SystemExit(f"httpx load failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def httpx_child(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    result = asyncio.run(
        _httpx_load(job["url"], job["tokens"], job["paths"], job["seconds"], job["conns"])
    )
    print(json.dumps(result))


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--signer", default="edge", choices=["edge", "nginx"])
    parser.add_argument(
        "--load", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument(
        "--no-fresh", action="store_true", help="skip the run without signature reuse"
    )
    parser.add_argument("--httpx-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.httpx_child:
        httpx_child(args.httpx_child)
        return 0

    load = run_wrk if args.load == "wrk" else run_httpx
    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    results: list[tuple[str, dict]] = []
    try:
        tracks = make_catalog(tmp / "origin")

        def measure(name: str, worker: subprocess.Popen, base: str, paths: list[str]) -> None:
            before = cpu_seconds(worker.pid)
            r = load(base + "/", tokens, paths, args.duration, args.connections, tmp)
            r["cpu_us"] = (cpu_seconds(worker.pid) - before) / max(1, r["requests"]) * 1e6
            results.append((name, r))

        port = free_port()
        worker = start_worker(tmp, port, args.signer)
        try:
            tokens, paths = plan(tmp, tracks)
            base = f"http://127.0.0.1:{port}"
            check = httpx.get(base + paths[0], headers={"Authorization": f"Bearer {tokens[1]}"})
            if check.status_code != 200:
                raise SystemExit(f"stream request failed: {check.status_code} {check.text}")
            # Warm-up: the catalog, token and tier caches (as a running service has them),
            # and every user's first ask of every track, whatever the speed of this machine:
            # the measured run is the steady state of repeat asks.
            asyncio.run(first_asks(base, tokens, tracks, args.connections))
            load(base + "/", tokens, paths, 2, args.connections, tmp)
            measure("baseline GET /healthz", worker, base, ["/healthz"])
            measure(f"GET .../stream ({args.signer})", worker, base, paths)
        finally:
            stop(worker)
        if not args.no_fresh:
            port = free_port()
            worker = start_worker(tmp, port, args.signer, {"DELIVERY_URL_REUSE_S": "0"})
            try:
                base = f"http://127.0.0.1:{port}"
                load(base + "/", tokens, paths, 2, args.connections, tmp)
                measure("  fresh: every URL signed", worker, base, paths)
            finally:
                stop(worker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def line(name: str, r: dict) -> str:
        return (
            f"{name:<26} {r['rps']:>7.0f} answers/s   p50 {r['p50_ms']:6.2f} ms"
            f"   p99 {r['p99_ms']:6.2f} ms   worker CPU {r['cpu_us']:4.0f} us/answer"
            f"   ({r['requests']} answers, {r['errors']} errors, {r['non2xx']} non-2xx)"
        )

    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        textwrap.dedent(
            f"""\
            delivery benchmark: 1 uvicorn worker, {args.connections} connections ({args.load}),
            {args.duration:.0f} s per run, signer={args.signer}, {USERS} users, {TRACKS} tracks,
            {os.cpu_count()} CPUs shared with the load generator, load average {load_avg}
            """
        )
    )
    for name, r in results:
        print(line(name, r))
    baseline, stream = results[0][1], results[1][1]
    print(f"ratio stream/baseline      {stream['rps'] / baseline['rps']:.2f}x answers/s")
    goal = (
        stream["rps"] >= GOAL_RPS
        and stream["p99_ms"] <= GOAL_P99_MS
        and not (stream["errors"] or stream["non2xx"])
    )
    print(
        f"goal (>= {GOAL_RPS} answers/s, p99 <= {GOAL_P99_MS:.0f} ms): "
        f"{'met' if goal else 'NOT met'}"
    )
    return 0


async def first_asks(base: str, tokens: list[str], tracks: list[str], conns: int) -> None:
    """Every (user, track) pair once, ``conns`` at a time."""
    pairs = [(t, track) for t in tokens for track in tracks]
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def ask(lane: int) -> None:
            for token, track in pairs[lane::conns]:
                for attempt in range(3):
                    try:
                        r = await client.get(
                            f"/v1/tracks/{track}/stream",
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        break
                    except httpx.TransportError:
                        # A keep-alive connection the worker closed while this process
                        # waited for the CPU (a busy machine): ask again on a new one.
                        if attempt == 2:
                            raise
                r.raise_for_status()

        await asyncio.gather(*(ask(lane) for lane in range(conns)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: fields 14 and 15 of stat(5), counted from after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
