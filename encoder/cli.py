"""``encoder``: ingest, batch, verify, ls.

Output contract (scripts and the delivery tests rely on it):

* ``encoder ingest`` prints ONE JSON object on stdout (see
  :meth:`encoder.pipeline.IngestResult.summary`); progress and warnings go to stderr.
* Errors are one line on stderr, ``encoder: error: <reason>``, with exit status
  2 for a usage problem (bad arguments, track id, store URL, setting) and 1 for
  a failed input, verification or store write. Success is 0.
* ``batch`` and ``verify`` exit 1 when any item failed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from encoder.errors import EncoderError, UsageError, one_line

PROG = "encoder"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2 (via UsageError)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _err(message: str) -> None:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr, flush=True)


class _IngestProgress:
    """Phase lines on stderr; a live percentage when stderr is a terminal."""

    LABELS = {
        "hash": "hashing the source",
        "probe": "probing",
        "transcode": "transcoding",
        "verify": "tagging and verifying",
        "upload": "uploading",
    }

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.phase: str | None = None
        self.last_draw = 0.0

    def __call__(self, phase: str, fraction: float | None) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if phase != self.phase:
            if self.tty and self.phase is not None:
                self.stream.write("\n")
            self.phase = phase
            self.last_draw = 0.0
            if not self.tty:
                self.stream.write(f"{PROG}: {self.LABELS.get(phase, phase)}\n")
                self.stream.flush()
        if self.tty and (now - self.last_draw > 0.1 or fraction == 1.0):
            self.last_draw = now
            pct = f" {fraction * 100:5.1f}%" if fraction is not None else ""
            self.stream.write(f"\r{PROG}: {self.LABELS.get(phase, phase)}{pct}")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.phase is not None and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="store URL (default: ENCODER_STORE or file://./data/origin)")


# Options that override a setting: field -> option (a bad value names the option); each is
# read from the parsed arguments by its argparse name (the option without its dashes).
OPTIONS = {"store": "--store", "profile": "--profile", "jobs": "--jobs", "notify_url": "--notify"}


def _load_settings(args: argparse.Namespace):
    """The settings, read once: ``ENCODER_*`` with this command's options on top."""
    from encoder.settings import load_settings

    given = {field: getattr(args, option.lstrip("-"), None) for field, option in OPTIONS.items()}
    return load_settings(OPTIONS, **given)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Encode uploads into Ogg Vorbis renditions.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ing = sub.add_parser("ingest", help="encode one file and publish it")
    ing.add_argument("source", help="audio file to ingest")
    ing.add_argument("--track-id", required=True, help="track id (A-Z a-z 0-9 _ -, max 64)")
    _store_arg(ing)
    for name in ("title", "artist", "album", "genre"):
        ing.add_argument(f"--{name}", help=f"{name} tag (overrides the source's)")
    ing.add_argument("--year", help="date tag (overrides the source's)")
    ing.add_argument("--profile", choices=["quality", "abr"], help="rate control (default quality)")
    ing.add_argument("--force", action="store_true", help="re-encode even if already published")
    ing.add_argument(
        "--replace",
        action="store_true",
        help="let an existing track id move to a different source (a new master)",
    )
    ing.add_argument("--notify", metavar="URL", help="delivery URL to tell about the publication")
    ing.add_argument("--quiet", action="store_true", help="no progress on stderr")

    bat = sub.add_parser("batch", help="ingest a folder or a CSV of source,track_id[,tags]")
    bat.add_argument("target", help="folder, or CSV file")
    _store_arg(bat)
    bat.add_argument(
        "--jobs",
        type=int,
        help="parallel jobs (default ENCODER_JOBS, else one per core)",
    )
    bat.add_argument("--shard", metavar="I/N", help="only items of shard I of N (0 <= I < N)")
    bat.add_argument("--profile", choices=["quality", "abr"])
    bat.add_argument("--force", action="store_true")
    bat.add_argument(
        "--replace",
        action="store_true",
        help="let existing track ids move to different sources (new masters)",
    )
    bat.add_argument("--json", action="store_true", help="print the summary as JSON")

    ver = sub.add_parser("verify", help="check stored renditions against their manifests")
    ver.add_argument("track_ids", nargs="*", metavar="TRACK_ID", help="default: every track")
    _store_arg(ver)
    ver.add_argument("--no-decode", action="store_true", help="skip the decode check")
    ver.add_argument("--json", action="store_true")

    ls = sub.add_parser("ls", help="list the tracks in a store")
    _store_arg(ls)
    ls.add_argument("--json", action="store_true")
    return parser


def _open_store(url: str):
    from origin.errors import StoreConfigError, StoreError
    from origin.store import open_store

    try:
        return open_store(url)
    except StoreConfigError as exc:
        raise UsageError(str(exc)) from None
    except StoreError as exc:
        raise EncoderError(f"cannot open the store: {exc}") from exc


def _cmd_ingest(args, settings) -> int:
    from encoder.pipeline import ingest

    tags = {
        "title": args.title,
        "artist": args.artist,
        "album": args.album,
        "genre": args.genre,
        "date": args.year,
    }
    progress = _IngestProgress(quiet=args.quiet)
    try:
        result = ingest(
            args.source,
            args.track_id,
            _open_store(settings.store),
            tags={k: v for k, v in tags.items() if v is not None},
            profile=settings.profile,
            force=args.force,
            replace=args.replace,
            settings=settings,
            on_progress=progress,
        )
    finally:
        progress.close()
    for warning in result.warnings:
        _warn(warning)
    if not args.quiet:
        word = "published" if result.status == "published" else "already published"
        print(
            f"{PROG}: {word} {result.track_id} {result.version} in {result.store}",
            file=sys.stderr,
        )
    print(json.dumps(result.summary()), flush=True)
    return 0


def _cmd_batch(args, settings) -> int:
    from encoder.batch import counts, in_shard, parse_shard, plan, run_batch, summary_table

    shard = parse_shard(args.shard) if args.shard else None
    if settings.engine == "oggenc":
        settings.oggenc_exe  # noqa: B018 - missing vorbis-tools: one line, not a failed row each
    items = plan(Path(args.target))
    if shard:
        items = [i for i in items if in_shard(i.track_id, *shard)]
    store = _open_store(settings.store)
    total = len(items)
    done = [0]
    failed = [0]
    tty = sys.stderr.isatty()

    def on_done(outcome) -> None:
        done[0] += 1
        failed[0] += outcome.status == "failed"
        width = 30
        filled = int(width * done[0] / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"[{bar}] {done[0]}/{total} failed={failed[0]}  {outcome.status}: {outcome.item.name}"
        )
        sys.stderr.write(("\r\x1b[2K" + line) if tty else line + "\n")
        sys.stderr.flush()

    outcomes = run_batch(
        items,
        store,
        settings,
        profile=settings.profile,
        force=args.force,
        replace=args.replace,
        jobs=settings.batch_jobs,
        on_done=on_done,
    )
    if tty and total:
        sys.stderr.write("\n")
    if args.json:
        print(
            json.dumps(
                {
                    "items": [
                        {
                            "source": o.item.name,
                            "track_id": o.item.track_id,
                            "status": o.status,
                            "version": o.version,
                            "detail": o.detail,
                        }
                        for o in outcomes
                    ],
                    "counts": counts(outcomes),
                    "store": store.url,
                }
            )
        )
    else:
        print(summary_table(outcomes))
        print(f"store: {store.url}")
    return 1 if counts(outcomes)["failed"] else 0


def _cmd_verify(args, settings) -> int:
    from encoder.listing import track_ids
    from encoder.verify import verify_track

    store = _open_store(settings.store)
    ids = args.track_ids or track_ids(store)
    from origin.errors import InvalidKey
    from origin.keys import validate_track_id

    for track_id in ids:
        try:
            validate_track_id(track_id)
        except InvalidKey as exc:
            raise UsageError(str(exc)) from None
    reports = [verify_track(store, t, settings.ffmpeg_exe, decode=not args.no_decode) for t in ids]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "track_id": r.track_id,
                        "version": r.version,
                        "ok": r.ok,
                        "renditions": r.checked,
                        "problems": r.problems,
                    }
                    for r in reports
                ]
            )
        )
    else:
        for r in reports:
            state = "ok  " if r.ok else "FAIL"
            detail = (
                f"{r.checked} renditions" if r.ok else "; ".join(r.problems) or "nothing to check"
            )
            print(f"{state}  {r.track_id}  {r.version or '-'}  {detail}")
        bad = sum(not r.ok for r in reports)
        print(f"{len(reports)} tracks checked, {bad} with problems")
    return 1 if any(not r.ok for r in reports) else 0


def _cmd_ls(args, settings) -> int:
    from encoder.listing import list_tracks

    entries = list_tracks(_open_store(settings.store))
    if args.json:
        print(json.dumps([e.to_dict() for e in entries]))
        return 0
    for e in entries:
        if e.problem:
            print(f"{e.track_id}  {e.version or '-'}  PROBLEM: {e.problem}")
            continue
        rates = "/".join(str(b) for b in e.bitrates)
        who = " - ".join(x for x in (e.artist, e.title) if x)
        print(
            f"{e.track_id}  {e.version}  {e.published_at}  {rates} kbps  "
            f"{e.duration_s or 0:.1f}s  {who}".rstrip()
        )
    print(f"{len(entries)} tracks")
    return 0


COMMANDS = {"ingest": _cmd_ingest, "batch": _cmd_batch, "verify": _cmd_verify, "ls": _cmd_ls}


def _terminate(signum, frame) -> NoReturn:
    # SystemExit unwinds every `finally`: ffmpeg is killed, the work directory removed,
    # and nothing after the last completed store write happens.
    raise SystemExit(128 + signum)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    names: set[str] = set()
    for action in parser._actions:
        names.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _option_strings(sub)
    return names


def _dash_name_hint(parser: argparse.ArgumentParser, argv: Sequence[str], message: str) -> str:
    """argparse takes a file named ``-song.flac`` for an option: say how to name it."""
    triggers = ("arguments are required", "unrecognized arguments", "ignored explicit argument")
    if not any(trigger in message for trigger in triggers):
        return message
    known = _option_strings(parser)
    for arg in argv:
        if arg == "--":
            break
        # "--xyz" is a mistyped option far more often than a file name
        if arg.startswith("-") and not arg.startswith("--") and arg not in known:
            example = "batch [options]" if argv[:1] == ["batch"] else "ingest --track-id ID"
            return (
                f"{message} ({arg!r} was read as an option: write a file name that begins "
                f"with '-' as ./{arg}, or last, after the options and --, e.g. "
                f"'{PROG} {example} -- {arg}')"
            )
    return message


def main(argv: Sequence[str] | None = None) -> int:
    from common.setting_values import InvalidSettings

    signal.signal(signal.SIGTERM, _terminate)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except UsageError as exc:
            raise UsageError(_dash_name_hint(parser, argv, str(exc))) from None
        return COMMANDS[args.command](args, _load_settings(args))
    except InvalidSettings as exc:  # one line per bad value
        for line in exc.lines:
            _err(line)
        return 2
    except EncoderError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, int) and exc.code > 128:  # raised by _terminate
            _err("terminated")
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
