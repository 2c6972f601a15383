"""Ingest a catalogue: a folder or a CSV, N parallel jobs, an optional shard of the whole.

Track ids come from the CSV (``source,track_id[,tags...]``) or, for a folder,
from a stable slug of each audio file's path relative to the folder (``Albums/Blue
Train/01 Blue Train.flac`` -> ``albums-blue-train-01-blue-train``); a file
directly in the folder takes the folder's own name as its parent (``encoder
batch "Blue Train"`` -> ``blue-train-01-blue-train``), so two albums each holding
``01 Intro.flac`` never derive the same id. Stable means a re-run, or another
machine, derives the same ids, so published versions are skipped
(``already_published``) and ``--shard I/N`` partitions the same catalogue the
same way everywhere: item goes to shard ``sha256(track_id) mod N``.

Only audio files take part (by extension, :data:`AUDIO_SUFFIXES`): cover art,
lyrics, cue sheets, logs and any other file are listed as skipped and never
derive an id, so ``song.ogg`` beside ``song.lrc`` is just ``song``. A track id
that already plays another source is not moved unless ``replace`` (see
:func:`encoder.pipeline.ingest`).

A bad file never stops the batch: it is reported in the summary and the exit
status says that something failed.
"""

from __future__ import annotations

import csv
import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from encoder.errors import EncoderError, UsageError, one_line
from encoder.settings import EncoderSettings
from encoder.tagging import TAG_NAMES
from origin.errors import InvalidKey
from origin.keys import validate_track_id
from origin.store import ObjectStore

# The file names a folder batch ingests (containers that carry audio). Anything else
# (.lrc .txt .jpg .cue .nfo .log ...) sits beside the music and is listed as skipped;
# a file with another name can still be ingested through a CSV or `encoder ingest`.
AUDIO_SUFFIXES = frozenset(
    {
        ".flac", ".wav", ".wave", ".w64", ".rf64", ".aif", ".aiff", ".aifc", ".caf", ".au",
        ".mp3", ".mp2", ".m4a", ".m4b", ".mp4", ".aac", ".ac3", ".eac3", ".dts",
        ".ogg", ".oga", ".opus", ".spx", ".mka", ".mkv", ".webm", ".mov",
        ".wma", ".asf", ".wv", ".ape", ".tta", ".tak", ".mpc", ".amr", ".dsf", ".dff",
    }
)  # fmt: skip
CSV_POSITIONAL_TAGS = ("title", "artist", "album", "date", "genre")
_TAG_ALIASES = {"year": "date", "album_artist": "albumartist", "track": "tracknumber"}
MAX_SLUG = 64


@dataclass(frozen=True)
class BatchItem:
    source: Path
    track_id: str
    name: str  # how the summary shows the source (relative path)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # a planning problem: the item fails without being tried
    skipped: str | None = None  # a sidecar file: not an error, not tried


@dataclass(frozen=True)
class BatchOutcome:
    item: BatchItem
    status: str  # published | already_published | failed | skipped
    version: str | None = None
    detail: str = ""
    seconds: float = 0.0


def slugify(relative_path: str) -> str:
    """A valid, stable track id for a path (extension dropped; long paths get a hash)."""
    stem = relative_path.rsplit(".", 1)[0] if "." in Path(relative_path).name else relative_path
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "track"
    if len(slug) > MAX_SLUG:
        digest = hashlib.sha256(relative_path.encode()).hexdigest()[:8]
        slug = slug[: MAX_SLUG - 9].rstrip("-") + "-" + digest
    return slug


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or int(m[2]) < 1 or int(m[1]) >= int(m[2]):
        raise UsageError(f"invalid --shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(m[1]), int(m[2])


def in_shard(track_id: str, index: int, count: int) -> bool:
    return int(hashlib.sha256(track_id.encode()).hexdigest()[:12], 16) % count == index


def _mark_collisions(items: list[BatchItem]) -> list[BatchItem]:
    first_source: dict[str, str] = {}
    for item in items:
        if item.error is None and item.skipped is None:
            first_source.setdefault(item.track_id, item.name)
    seen: dict[str, int] = {}
    for item in items:
        if item.error is None and item.skipped is None:
            seen[item.track_id] = seen.get(item.track_id, 0) + 1
    out = []
    for item in items:
        if item.error is None and item.skipped is None and seen[item.track_id] > 1:
            item = BatchItem(
                item.source,
                item.track_id,
                item.name,
                item.tags,
                error=f"track id {item.track_id!r} is derived from {seen[item.track_id]} files; "
                "list them in a CSV to choose ids",
            )
        out.append(item)
    return out


def derive_track_id(root: Path, relative_path: str) -> str:
    """The default track id of ``root/relative_path``: its parent folder(s) and name.

    A file directly in ``root`` takes ``root``'s own name as its parent folder, so
    ``Album One/01 Intro.flac`` derives ``album-one-01-intro`` whether the batch
    runs on ``Album One`` or on the folder holding it.
    """
    if "/" not in relative_path:
        parent = root.resolve().name
        if parent:
            return slugify(f"{parent}/{relative_path}")
    return slugify(relative_path)


def plan_directory(root: Path) -> list[BatchItem]:
    items = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # hidden files and folders (.DS_Store, .git, partial uploads)
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix not in AUDIO_SUFFIXES:
            why = f"not an audio file ({suffix or 'no extension'}): ignored"
            items.append(BatchItem(path, "-", rel, skipped=why))
        else:
            items.append(BatchItem(path, derive_track_id(root, rel), rel))
    return _mark_collisions(items)


def _tag_columns(header: Sequence[str]) -> list[str]:
    names = []
    for raw in header[2:]:
        name = _TAG_ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in TAG_NAMES:
            raise UsageError(f"unknown CSV column {raw!r}: tags are {', '.join(TAG_NAMES)}")
        names.append(name)
    return names


def plan_csv(csv_path: Path) -> list[BatchItem]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {str(csv_path)!r}: {exc}") from None
    rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        return []
    columns = list(CSV_POSITIONAL_TAGS)
    if rows[0][0].strip().lower() == "source":
        if len(rows[0]) < 2 or rows[0][1].strip().lower() != "track_id":
            raise UsageError("CSV header must start with source,track_id")
        columns = _tag_columns(rows[0])
        rows = rows[1:]
    items = []
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if len(cells) < 2 or not cells[0]:
            raise UsageError(f"CSV row {number}: expected source,track_id[,tags...]")
        source = Path(cells[0])
        if not source.is_absolute():
            source = csv_path.parent / source
        tags = {name: value for name, value in zip(columns, cells[2:], strict=False) if value}
        error = None
        try:
            validate_track_id(cells[1])
        except InvalidKey as exc:
            error = str(exc)
        items.append(BatchItem(source, cells[1], cells[0], tags, error=error))
    return _mark_collisions(items)


def plan(target: Path) -> list[BatchItem]:
    if target.is_dir():
        return plan_directory(target)
    if target.is_file():
        return plan_csv(target)
    raise UsageError(f"no such folder or CSV file: {str(target)!r}")


def run_batch(
    items: Sequence[BatchItem],
    store: ObjectStore,
    settings: EncoderSettings,
    *,
    profile: str = "quality",
    force: bool = False,
    replace: bool = False,
    jobs: int = 1,
    on_done: Callable[[BatchOutcome], None] | None = None,
) -> list[BatchOutcome]:
    """Ingest every item (``jobs`` at a time); outcomes come back in the items' order."""
    from encoder.pipeline import ingest

    stop = threading.Event()

    def cancelled(phase: str, fraction: float | None) -> None:
        if stop.is_set():
            raise EncoderError("batch cancelled")

    def one(item: BatchItem) -> BatchOutcome:
        if item.skipped:
            return BatchOutcome(item, "skipped", detail=item.skipped)
        if item.error:
            return BatchOutcome(item, "failed", detail=item.error)
        started = time.monotonic()
        try:
            result = ingest(
                item.source,
                item.track_id,
                store,
                tags=item.tags,
                profile=profile,
                force=force,
                replace=replace,
                settings=settings,
                on_progress=cancelled,
            )
        except EncoderError as exc:
            return BatchOutcome(
                item, "failed", detail=one_line(exc), seconds=time.monotonic() - started
            )
        except Exception as exc:  # noqa: BLE001 - one broken file must not end the batch
            detail = one_line(f"internal error: {type(exc).__name__}: {exc}")
            return BatchOutcome(item, "failed", detail=detail, seconds=time.monotonic() - started)
        detail = "; ".join(result.warnings)
        return BatchOutcome(
            item, result.status, result.version, one_line(detail), time.monotonic() - started
        )

    outcomes: dict[int, BatchOutcome] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(one, item): index for index, item in enumerate(items)}
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[futures[future]] = outcome
            if on_done is not None:
                on_done(outcome)
    except BaseException:
        # SIGTERM or Ctrl-C: queued items never start, running ones stop at their next
        # progress report (ffmpeg is killed, nothing half-published), then we leave.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return [outcomes[i] for i in range(len(items))]


def counts(outcomes: Sequence[BatchOutcome]) -> dict[str, int]:
    result = {"published": 0, "already_published": 0, "failed": 0, "skipped": 0}
    for outcome in outcomes:
        result[outcome.status] = result.get(outcome.status, 0) + 1
    return result


def summary_table(outcomes: Sequence[BatchOutcome]) -> str:
    """A fixed-width table, one row per item, then a totals line."""
    rows = [("STATUS", "TRACK_ID", "VERSION", "SOURCE", "DETAIL")]
    for o in outcomes:
        rows.append((o.status, o.item.track_id, o.version or "-", o.item.name, o.detail or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows
    ]
    c = counts(outcomes)
    lines.append(
        f"{len(outcomes)} items: {c['published']} published, {c['already_published']} "
        f"already published, {c['failed']} failed, {c['skipped']} skipped"
    )
    return "\n".join(line.rstrip() for line in lines)
