"""``edge loadtest`` arguments, their checks and ``main`` (see :mod:`loadtest.run`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import urlsplit

from loadtest.run import LoadTest, LoadTestError, format_table, is_loopback_url
from origin.errors import InvalidKey
from origin.keys import parse_key


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--edge", help="edge base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--delivery", help="delivery base URL: ask it for signed URLs")
    p.add_argument("--user-token", help="user bearer token for --delivery")
    p.add_argument("--quality", default="auto", help="quality asked from delivery (auto)")
    p.add_argument("--signing-key", help="sign URLs locally with this Ed25519 private key PEM")
    p.add_argument("--hs256-secret", help="sign URLs locally with this HS256 secret")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime of self-signed URLs (3600 s)")
    p.add_argument("--tracks", nargs="+", default=[], help="object keys (or track ids)")
    p.add_argument("--store", help="list the renditions of this store URL as the tracks")
    p.add_argument("--duration", type=float, default=30.0, help="seconds (30)")
    p.add_argument("--max-requests", type=int, default=0, help="stop after N requests (0: no cap)")
    p.add_argument("--listeners", type=int, default=32, help="simulated listeners (32)")
    p.add_argument("--chunk-min", type=int, default=64 * 1024, help="smallest range (64 KiB)")
    p.add_argument("--chunk-max", type=int, default=256 * 1024, help="largest range (256 KiB)")
    p.add_argument("--seek-prob", type=float, default=0.05, help="chance of a seek per chunk")
    p.add_argument("--skip-prob", type=float, default=0.02, help="chance of leaving a track")
    p.add_argument("--tail-first", type=float, default=0.5,
                   help="chance a listener first reads the last 64 KiB (0.5)")  # fmt: skip
    p.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of popularity (1.1)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (30 s)")
    p.add_argument("--seed", type=int, default=None, help="random seed (repeatable runs)")
    p.add_argument("--allow-remote", action="store_true", help="allow non-loopback targets")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _validate(args: argparse.Namespace) -> list[str]:
    if args.delivery:
        if not args.user_token:
            raise LoadTestError("--delivery needs --user-token")
    elif not args.edge:
        raise LoadTestError("give --edge (with --signing-key or --hs256-secret) or --delivery")
    elif not (args.signing_key or args.hs256_secret):
        raise LoadTestError("self-signed URLs need --signing-key PEM or --hs256-secret")
    for name in ("edge", "delivery"):
        url = getattr(args, name)
        if url is None:
            continue
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise LoadTestError(f"--{name} {url!r} is not an http(s) URL")
        if not args.allow_remote and not is_loopback_url(url):
            raise LoadTestError(f"--{name} {url!r} is not a loopback address; add --allow-remote")
    if args.listeners < 1 or args.duration <= 0 or args.max_requests < 0:
        raise LoadTestError("--listeners must be >= 1, --duration > 0, --max-requests >= 0")
    if not 1 <= args.chunk_min <= args.chunk_max:
        raise LoadTestError("need 1 <= --chunk-min <= --chunk-max")
    tracks = list(args.tracks)
    if args.store:
        from origin.store import open_store

        tracks += [k for k in open_store(args.store).list("tracks/") if k.endswith(".ogg")]
    if not tracks:
        raise LoadTestError("no tracks: give --tracks or --store")
    for t in tracks:
        if "/" in t:
            try:
                if parse_key(t).kind != "rendition":
                    raise InvalidKey("not a rendition")
            except InvalidKey:
                raise LoadTestError(f"{t!r} is not a rendition key") from None
        elif not args.delivery:
            raise LoadTestError(f"{t!r} is a track id: self-signed URLs need object keys")
    if args.delivery:  # delivery wants track ids
        tracks = list(dict.fromkeys(t.split("/")[1] if "/" in t else t for t in tracks))
    return tracks


def run(args: argparse.Namespace, prog: str) -> int:
    try:
        tracks = _validate(args)
    except (LoadTestError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    test = LoadTest(args, tracks)
    results = asyncio.run(test.run())
    summary = results.summary()
    target = args.edge or f"edge URLs signed by {args.delivery}"
    summary.update(listeners=args.listeners, tracks=len(tracks), target=target)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            format_table(
                summary,
                f"{prog}: {args.listeners} listeners, {summary['duration_s']:.1f} s, "
                f"{len(tracks)} tracks (zipf s={args.zipf}), target {summary['target']}",
            )
        )
    return 1 if results.error_count else 0


def main(argv: list[str] | None = None, prog: str = "edge loadtest") -> int:
    """Run a load test; bad input prints one line and exits 2."""
    parser = argparse.ArgumentParser(prog=prog, description="simulated listeners against an edge")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, prog)
    except (ValueError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        print(f"{prog}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
