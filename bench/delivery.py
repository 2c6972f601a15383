"""Benchmark: stream-URL answers per second from ONE delivery worker, edge signer.

    .venv/bin/python bench/delivery.py [--duration 8] [--connections 32] [--load wrk|httpx]

Starts one ``delivery serve`` worker (uvicorn, access log off) on a synthetic
catalog, then a SEPARATE load process with 32 concurrent connections (wrk with
a Lua script when installed, else an httpx asyncio client). Two runs in the
same process tree:

* baseline: ``GET /healthz`` (the framework and server alone)
* stream:   ``GET /v1/tracks/{id}/stream`` rotating over tracks, users and
  qualities (half premium, half free), every answer signing 2-3 renditions

and prints responses/s, p50 and p99 for each, and the stream/baseline ratio.
Goal (issue 4): >= 2,000 responses/s with p99 <= 20 ms on 2 cores. The load
generator shares the machine, so the figures are a floor, and noisy when other
work runs. Use wrk: the httpx fallback tops out near 1,500 requests/s on its
own (it measures the Python client more than the server).
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
USERS = 64
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


def start_worker(tmp: Path, port: int, signer: str) -> subprocess.Popen:
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
            extra={"tier": "premium" if u % 2 else "free"},
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
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1],
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
                        paths[i % len(paths)],
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
    parser.add_argument("--httpx-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.httpx_child:
        httpx_child(args.httpx_child)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    try:
        tracks = make_catalog(tmp / "origin")
        port = free_port()
        worker = start_worker(tmp, port, args.signer)
        try:
            tokens, paths = plan(tmp, tracks)
            base = f"http://127.0.0.1:{port}"
            check = httpx.get(base + paths[0], headers={"Authorization": f"Bearer {tokens[1]}"})
            if check.status_code != 200:
                raise SystemExit(f"stream request failed: {check.status_code} {check.text}")
            load = run_wrk if args.load == "wrk" else run_httpx
            # Warm-up: fills the catalog, token and tier caches (as a running service has them).
            load(base + "/", tokens, paths, 2, args.connections, tmp)
            baseline = load(base + "/", tokens, ["/healthz"], args.duration, args.connections, tmp)
            stream = load(base + "/", tokens, paths, args.duration, args.connections, tmp)
        finally:
            stop(worker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def line(name: str, r: dict) -> str:
        return (
            f"{name:<24} {r['rps']:>9.0f} resp/s   p50 {r['p50_ms']:6.2f} ms"
            f"   p99 {r['p99_ms']:6.2f} ms   ({r['requests']} responses, {r['errors']} errors,"
            f" {r['non2xx']} non-2xx)"
        )

    print(
        textwrap.dedent(
            f"""\
            delivery benchmark: 1 uvicorn worker, {args.connections} connections ({args.load}),
            {args.duration:.0f} s per run, signer={args.signer},
            {os.cpu_count()} CPUs shared with the load generator
            """
        )
    )
    print(line("baseline GET /healthz", baseline))
    print(line(f"GET .../stream ({args.signer})", stream))
    print(f"ratio stream/baseline     {stream['rps'] / baseline['rps']:.2f}x responses/s")
    goal = stream["rps"] >= 2000 and stream["p99_ms"] <= 20
    print(f"goal (>= 2000 resp/s, p99 <= 20 ms): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
