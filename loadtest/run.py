"""``edge loadtest``: simulated listeners playing tracks through an edge, the way players do.

Each listener picks a track (Zipf-distributed popularity: a few tracks are
hot, most are not), obtains a signed URL — from a delivery service
(``--delivery URL --user-token T``) or self-signed with a dev key
(``--signing-key PEM`` / ``--hs256-secret S``) — then fetches it progressively
in range requests of ``--chunk-min``..``--chunk-max`` bytes. Like ffmpeg and
Chromium it often reads the last 64 KiB first (to learn the duration), seeks
now and then (``--seek-prob``) and moves on to another track part-way through
(``--skip-prob``). The run ends after ``--duration`` seconds or
``--max-requests`` requests, whichever comes first.

Reported: requests/s, MB/s, TTFB and latency p50/p95/p99, errors by status,
and the hit ratio from ``X-Cache`` — as a table, or JSON with ``--json``.
Targets must be loopback addresses unless ``--allow-remote`` is given, so a
typo cannot load-test someone else's server. Exit status 1 when any request
failed.

Tracks: ``--tracks`` takes object keys (``tracks/<id>/<version>/<bitrate>.ogg``)
or, with ``--delivery``, track ids; ``--store URL`` lists the renditions of a
store instead.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from common.singleflight import SingleFlight
from loadtest.client import LoadClient, LoadClientError

TAIL_PROBE = 65536


class LoadTestError(ValueError):
    """Bad arguments or an unusable target (one line for the CLI)."""


# -- pure helpers ----------------------------------------------------------------------


def zipf_weights(n: int, s: float) -> list[float]:
    """Popularity of rank 1..n: proportional to 1 / rank^s."""
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(p / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def content_range_size(value: str | None) -> int | None:
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


# -- results -------------------------------------------------------------------------------


@dataclass
class Results:
    started: float = 0.0
    finished: float = 0.0
    requests: int = 0
    bytes: int = 0
    ttfb: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cache: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> dict:
        elapsed = max(self.finished - self.started, 1e-9)
        hits = self.cache.get("HIT", 0)
        looked_up = sum(self.cache.values())
        ttfb, latency = sorted(self.ttfb), sorted(self.latency)

        def ms(values: list[float], p: float) -> float | None:
            v = percentile(values, p)
            return None if v is None else round(v * 1000, 3)

        return {
            "duration_s": round(elapsed, 3),
            "requests": self.requests,
            "requests_per_s": round(self.requests / elapsed, 1),
            "bytes": self.bytes,
            "mb_per_s": round(self.bytes / elapsed / 1e6, 2),
            "ttfb_ms": {f"p{p}": ms(ttfb, p) for p in (50, 95, 99)},
            "latency_ms": {f"p{p}": ms(latency, p) for p in (50, 95, 99)},
            "statuses": dict(sorted(self.statuses.items())),
            "errors": self.error_count,
            "errors_by_status": dict(sorted(self.errors.items())),
            "x_cache": dict(sorted(self.cache.items())),
            "hit_ratio": round(hits / looked_up, 4) if looked_up else None,
        }


def format_table(summary: dict, header: str) -> str:
    def num(v) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines = [
        header,
        f"  requests      {summary['requests']:>10}   ({summary['requests_per_s']:.1f}/s)",
        f"  bytes         {summary['bytes']:>10}   ({summary['mb_per_s']:.2f} MB/s)",
        f"  hit ratio     {num(summary['hit_ratio']):>10}   X-Cache {summary['x_cache']}",
        f"  {'(ms)':<12} {'p50':>10} {'p95':>10} {'p99':>10}",
    ]
    for name, key in (("TTFB", "ttfb_ms"), ("latency", "latency_ms")):
        row = summary[key]
        lines.append(
            f"  {name:<12} {num(row['p50']):>10} {num(row['p95']):>10} {num(row['p99']):>10}"
        )
    lines.append(f"  errors        {summary['errors']:>10}   {summary['errors_by_status'] or ''}")
    lines.append(f"  statuses      {summary['statuses']}")
    return "\n".join(lines)


# -- signed URLs -----------------------------------------------------------------------------


class UrlSource:
    """Signed URLs per track, reused until shortly before they expire."""

    def __init__(self, args: argparse.Namespace, client: httpx.AsyncClient) -> None:
        self.args = args
        self.client = client
        self._cache: dict[str, tuple[str, float]] = {}
        self._fresh_urls = SingleFlight()
        self._key = None
        if not args.delivery:
            from common.signing_keys import eddsa_signing_key, hs256_signing_key

            if args.hs256_secret:
                self._key = hs256_signing_key(args.hs256_secret)
            else:
                self._key = eddsa_signing_key(Path(args.signing_key).read_bytes())

    async def url(self, track: str) -> str:
        cached = self._cache.get(track)
        if cached and cached[1] - 30 > time.time():
            return cached[0]
        # One request per track at a time: 32 listeners starting together must not
        # trip the delivery service's rate limit by asking for the same URL 32 times.
        url, expires = await self._fresh_urls.run(track, lambda: self._fresh(track))
        self._cache[track] = (url, expires)
        return url

    async def _fresh(self, track: str) -> tuple[str, float]:
        if self._key is not None:
            from edge.token import sign_stream_token

            ttl = self.args.ttl
            token = sign_stream_token("/" + track, key=self._key, ttl_s=ttl, sub="loadtest")
            return f"{self.args.edge.rstrip('/')}/{track}?token={token}", time.time() + ttl
        for attempt in range(5):
            try:
                return await self._from_delivery(track)
            except _RateLimited as exc:
                await asyncio.sleep(min(exc.retry_after, 5.0) * (attempt + 1))
        raise LoadTestError(f"delivery kept rate-limiting URLs for track {track!r}")

    async def _from_delivery(self, track: str) -> tuple[str, float]:
        a = self.args
        r = await self.client.get(
            f"{a.delivery.rstrip('/')}/v1/tracks/{track}/stream",
            params={"quality": a.quality},
            headers={"authorization": f"Bearer {a.user_token}"},
        )
        if r.status_code == 429:
            retry = r.headers.get("retry-after", "1")
            raise _RateLimited(float(retry) if retry.replace(".", "", 1).isdigit() else 1.0)
        if r.status_code != 200:
            raise LoadTestError(f"delivery answered {r.status_code} for track {track!r}")
        body = r.json()
        url = body["url"]
        if a.edge:  # aim at the edge under test rather than the one delivery signs for
            parts = urlsplit(url)
            url = a.edge.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        if not a.allow_remote and not is_loopback_url(url):
            raise LoadTestError(f"delivery returned a non-loopback URL {url!r}; --allow-remote?")
        expires = time.time() + 60.0
        try:
            from datetime import datetime

            expires = datetime.fromisoformat(
                str(body["expires_at"]).replace("Z", "+00:00")
            ).timestamp()
        except (KeyError, ValueError):
            pass
        return url, expires


class _RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


# -- listeners -----------------------------------------------------------------------------


class LoadTest:
    def __init__(self, args: argparse.Namespace, tracks: list[str]) -> None:
        self.args = args
        self.tracks = tracks
        self.weights = zipf_weights(len(tracks), args.zipf)
        self.results = Results()
        self.rng = random.Random(args.seed)  # noqa: S311 - simulation, not security
        self._deadline = 0.0
        self._issued = 0

    def _may_send(self) -> bool:
        if time.monotonic() >= self._deadline:
            return False
        if self.args.max_requests and self._issued >= self.args.max_requests:
            return False
        self._issued += 1
        return True

    async def _get(self, client: LoadClient, url: str, rng: str) -> tuple[int, int | None]:
        """One range request; returns (status, object size from Content-Range)."""
        res = self.results
        res.requests += 1
        try:
            reply = await client.get(url, {"Range": rng})
        except LoadClientError as exc:
            res.count(res.errors, str(exc))
            return 0, None
        res.bytes += reply.nbytes
        res.ttfb.append(reply.ttfb)
        res.latency.append(reply.latency)
        status = reply.status
        res.count(res.statuses, str(status))
        if status not in (200, 206):
            res.count(res.errors, str(status))
        cache = reply.headers.get("x-cache")
        if cache:
            res.count(res.cache, cache)
        return status, content_range_size(reply.headers.get("content-range"))

    async def _listener(self, client: LoadClient, urls: UrlSource) -> None:
        a, rng = self.args, self.rng
        while True:
            track = rng.choices(self.tracks, weights=self.weights)[0]
            try:
                url = await urls.url(track)
            except (LoadTestError, httpx.HTTPError, KeyError, ValueError) as exc:
                self.results.count(self.results.errors, f"url:{type(exc).__name__}")
                await asyncio.sleep(0.1)
                if time.monotonic() >= self._deadline:
                    return
                continue
            size = None
            if rng.random() < a.tail_first:
                if not self._may_send():
                    return
                status, size = await self._get(client, url, f"bytes=-{TAIL_PROBE}")
                if status not in (200, 206):
                    continue
            pos = 0
            while True:
                if not self._may_send():
                    return
                chunk = rng.randint(a.chunk_min, a.chunk_max)
                status, total = await self._get(client, url, f"bytes={pos}-{pos + chunk - 1}")
                if status not in (200, 206):
                    break
                size = total or size
                pos += chunk
                if size is None or pos >= size or rng.random() < a.skip_prob:
                    break
                if rng.random() < a.seek_prob:
                    pos = rng.randrange(0, size)

    async def run(self) -> Results:
        a = self.args
        # httpx only for the few delivery API calls; the range requests use the lean client.
        async with httpx.AsyncClient(timeout=a.timeout) as api:
            urls = UrlSource(a, api)
            client = LoadClient(timeout=a.timeout)
            try:
                self.results.started = time.perf_counter()
                self._deadline = time.monotonic() + a.duration
                await asyncio.gather(*(self._listener(client, urls) for _ in range(a.listeners)))
                self.results.finished = time.perf_counter()
            finally:
                await client.aclose()
        return self.results
