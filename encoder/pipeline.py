"""One upload in, one published version out: the ingest pipeline.

probe -> version check -> ONE decode (fan-out to oggenc per rung, or the one-pass
ffmpeg) -> tag -> verify -> publish (-> notify)

The version (a content address) is computed from the source bytes and the
profile before anything expensive runs, so re-ingesting a published source is
a hash and one store read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from encoder.cover_art import extract_cover_art
from encoder.errors import (
    ConflictError,
    InputError,
    PublishError,
    UsageError,
    VerificationError,
)
from encoder.fanout import oggenc_version, transcode_fanout
from encoder.loudness import loudness_summary, replaygain
from encoder.notify import notify_published
from encoder.probe import SourceProbe, check_decoded_duration, probe
from encoder.profile import Profile, get_profile, select_rungs, version_for
from encoder.settings import EncoderSettings, load_settings
from encoder.tagging import TAG_NAMES, clean_tags, write_tags
from encoder.transcode import ffmpeg_version, transcode
from encoder.verify import check_rendition
from encoder.workdir import WorkDir
from origin.errors import InvalidKey, StoreConfigError, StoreError
from origin.keys import rendition_key, validate_track_id
from origin.manifest import EncoderInfo, Manifest, Rendition, SourceInfo, utc_now
from origin.store import ObjectStore, open_store, sha256_file

Status = Literal["published", "already_published"]
# (phase, fraction done or None): phases are hash, probe, transcode, verify, upload
ProgressCallback = Callable[[str, float | None], None]


@dataclass(frozen=True)
class IngestResult:
    track_id: str
    version: str
    status: Status
    manifest: Manifest
    warnings: tuple[str, ...] = ()
    latest_updated: bool = True
    store: str = ""  # the store's resolved URL (file:///absolute/path for a local one)

    def summary(self) -> dict[str, Any]:
        """The JSON object ``encoder ingest`` prints (a stable contract for scripts)."""
        m = self.manifest
        return {
            "track_id": self.track_id,
            "version": self.version,
            "status": self.status,
            "profile": m.encoder.profile,
            "renditions": [
                {
                    "bitrate_kbps": r.bitrate_kbps,
                    "bytes": r.bytes,
                    "avg_bitrate_kbps": r.avg_bitrate_kbps,
                    "key": r.key,
                }
                for r in m.renditions
            ],
            "loudness": m.loudness.model_dump(mode="json"),
            "duration_s": m.source.duration_s,
            "warnings": list(self.warnings),
            "store": self.store,
        }


def _open(store: ObjectStore | str) -> ObjectStore:
    if not isinstance(store, str):
        return store
    try:
        return open_store(store)
    except StoreConfigError as exc:
        raise UsageError(str(exc)) from None
    except StoreError as exc:
        raise PublishError(f"cannot open the store {store!r}: {exc}") from exc


def _overrides(tags: Mapping[str, object] | None) -> dict[str, str]:
    if not tags:
        return {}
    unknown = sorted(k for k, v in tags.items() if v is not None and k not in TAG_NAMES)
    if unknown:
        raise UsageError(f"unknown tag {unknown[0]!r}: use one of {', '.join(TAG_NAMES)}")
    return clean_tags(tags)


def _guard_latest(
    store: ObjectStore, track_id: str, version: str, source_sha: str, source: str, replace: bool
) -> None:
    """Refuse to point an existing track at a different source unless ``replace``.

    Another version of the SAME source (another profile) may take over; a new
    master, or another file that happens to derive the same track id (two
    albums each holding ``01 Intro.flac``), must be asked for explicitly.
    """
    from encoder.publish import read_latest, read_manifest

    if replace:
        return
    latest = read_latest(store, track_id)
    if latest is None or latest.version == version:
        return
    current = read_manifest(store, track_id, latest.version)
    if current is None or current.source.sha256 == source_sha:
        return  # a dangling pointer is repaired; the same master may change profile
    raise ConflictError(
        f"track {track_id!r} already plays version {latest.version} of another source "
        f"(sha256 {current.source.sha256[:12]}, {current.source.duration_s:g}s "
        f"{current.source.codec}); refusing to replace it with {source!r} "
        f"(sha256 {source_sha[:12]}): pass --replace to make that the track's new version, "
        "or choose another track id"
    )


def _pointed(store: ObjectStore, track_id: str, version: str) -> bool:
    """Make sure latest.json names ``version``; True if it had to be (re)written."""
    from encoder.publish import point_latest, read_latest

    latest = read_latest(store, track_id)
    if latest is not None and latest.version == version:
        return False
    point_latest(store, track_id, version)
    return True


def _notify(
    settings: EncoderSettings, notify_url: str | None, track_id: str, version: str
) -> list[str]:
    url = notify_url if notify_url is not None else settings.notify_url
    if not url:
        return []
    token = settings.notify_token.get_secret_value() if settings.notify_token else None
    problem = notify_published(
        url, track_id, version, token=token, timeout_s=settings.notify_timeout_s
    )
    return [problem] if problem else []


def ingest(
    source: str | Path,
    track_id: str,
    store: ObjectStore | str,
    tags: Mapping[str, object] | None = None,
    profile: str = "quality",
    force: bool = False,
    *,
    replace: bool = False,
    settings: EncoderSettings | None = None,
    on_progress: ProgressCallback | None = None,
    notify_url: str | None = None,
) -> IngestResult:
    """Encode ``source`` into the profile's renditions and publish them for ``track_id``.

    ``tags`` override what the source carries (title, artist, album, date, genre,
    ...). Returns ``status="already_published"`` at once when this source was
    already published with this profile. ``force`` re-encodes anyway and
    re-uploads the renditions, which repairs a damaged version; it refuses
    when the new bytes would differ from the published ones (other tags, another
    ffmpeg build), because objects under a version never change. When the
    track already plays a different source, :class:`~encoder.errors.ConflictError`
    is raised before anything is written unless ``replace`` is true. Raises
    :class:`~encoder.errors.EncoderError` subclasses; nothing becomes visible in
    the store unless the whole version is published.

    The source is resolved to one absolute path first: hashing, mutagen and
    every ffmpeg run (``file:/abs/path``) open that same file, whatever its
    name looks like (``concat:x.flac``, ``http:x``, ``-x.flac``).
    """
    from encoder.publish import publish, read_manifest

    settings = settings or load_settings()
    progress = on_progress or (lambda phase, fraction: None)
    try:
        validate_track_id(track_id)
    except InvalidKey as exc:
        raise UsageError(str(exc)) from None
    chosen: Profile = get_profile(profile, settings.engine)
    if chosen.engine == "oggenc":
        settings.oggenc_exe  # noqa: B018 - missing vorbis-tools: one clear line, before any work
    overrides = _overrides(tags)
    store = _open(store)
    path = Path(source)
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise InputError(f"not a regular file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    path = path.resolve()

    progress("hash", None)
    source_sha = sha256_file(path)
    version = version_for(source_sha, chosen)
    _guard_latest(store, track_id, version, source_sha, str(source), replace)
    existing = read_manifest(store, track_id, version)
    if existing is not None and not force:
        return _already_published(store, existing, overrides, settings, notify_url)

    progress("probe", None)
    found = probe(path, settings.ffmpeg_exe, max_duration_s=settings.max_duration_s)
    effective_tags = {**found.tags, **overrides}
    if existing is not None and existing.tags != effective_tags:
        raise UsageError(
            f"--force would change the tags of published version {version}; objects "
            "under a version never change (edit the master or the profile instead)"
        )
    with WorkDir(settings.work_root) as workdir:
        manifest, files, warnings = _encode(
            found,
            source_sha,
            track_id,
            version,
            chosen,
            effective_tags,
            settings,
            workdir,
            progress,
        )
        if existing is not None:
            _same_bytes(existing, manifest)
            manifest = existing  # the stored manifest stays byte for byte as it is
        # again, now that the encode is done: another run may have published meanwhile
        _guard_latest(store, track_id, version, source_sha, str(source), replace)
        progress("upload", 0.0)
        publish(
            store,
            manifest,
            files,
            write_manifest=existing is None,
            on_upload=lambda done, total: progress("upload", done / total),
        )
    warnings.extend(_notify(settings, notify_url, track_id, version))
    return IngestResult(
        track_id,
        version,
        "published",
        manifest,
        tuple(warnings),
        store=getattr(store, "url", ""),
    )


def _already_published(
    store: ObjectStore,
    existing: Manifest,
    overrides: dict[str, str],
    settings: EncoderSettings,
    notify_url: str | None,
) -> IngestResult:
    warnings = []
    changed = sorted(k for k, v in overrides.items() if existing.tags.get(k) != v)
    if changed:
        warnings.append(
            f"already published with other tags ({', '.join(changed)}); a published "
            "version never changes: tags are kept as they were"
        )
    track_id, version = existing.track_id, existing.version
    updated = _pointed(store, track_id, version)
    if updated:  # latest.json had to be repaired: delivery should hear of it
        warnings.extend(_notify(settings, notify_url, track_id, version))
    return IngestResult(
        track_id,
        version,
        "already_published",
        existing,
        tuple(warnings),
        updated,
        store=getattr(store, "url", ""),
    )


def _encode(
    found: SourceProbe,
    source_sha: str,
    track_id: str,
    version: str,
    profile: Profile,
    tags: dict[str, str],
    settings: EncoderSettings,
    workdir: Path,
    progress: ProgressCallback,
) -> tuple[Manifest, dict[int | str, Path], list[str]]:
    """The single pass, tagging and verification: a manifest for files in ``workdir``."""
    warnings = list(found.warnings)
    cover = found.cover
    if cover is not None and len(cover.data) > settings.max_cover_bytes:
        warnings.append(
            f"cover art of {len(cover.data)} bytes exceeds ENCODER_MAX_COVER_BYTES; not copied"
        )
        cover = None
    rungs = select_rungs(profile, lossless=found.lossless, bitrate_kbps=found.bitrate_kbps)
    if len(rungs) < len(profile.rungs):
        warnings.append(
            f"the source is {found.bitrate_kbps:g} kbps {found.codec}: no rendition above "
            f"{rungs[-1].bitrate_kbps} kbps (no upscaling)"
        )
    hint = found.duration_s or 0.0

    def on_progress(t: float) -> None:
        progress("transcode", min(1.0, t / hint) if hint else None)

    with ThreadPoolExecutor(max_workers=1) as side:
        built = side.submit(_built_with, settings, profile)  # while the encoders run
        if profile.engine == "oggenc":
            result = transcode_fanout(
                settings.ffmpeg_exe,
                settings.oggenc_exe,
                found.path,
                profile,
                rungs,
                workdir,
                on_progress=on_progress,
            )
        else:
            result = transcode(
                settings.ffmpeg_exe, found.path, profile, rungs, workdir, on_progress=on_progress
            )
    built_with = built.result()
    decoded = result.decoded_duration_s
    check_decoded_duration(found, decoded, result.timeline_s)
    if result.decode_errors:
        warnings.append(f"ffmpeg reported {result.decode_errors} decoding error(s)")
    gain = replaygain(result.loudness, decoded)

    progress("verify", None)
    renditions = []
    for rung in rungs:
        out = result.outputs[rung.bitrate_kbps]
        write_tags(out, tags, gain, cover)
        check = check_rendition(out, rung.bitrate_kbps, decoded_duration_s=decoded, profile=profile)
        renditions.append(
            Rendition(
                bitrate_kbps=rung.bitrate_kbps,
                key=rendition_key(track_id, version, rung.bitrate_kbps),
                bytes=check.bytes,
                sha256=check.sha256,
                duration_s=check.duration_s,
                avg_bitrate_kbps=check.avg_bitrate_kbps,
                sample_rate=check.sample_rate,
                channels=check.channels,
            )
        )
    art = extract_cover_art(settings.ffmpeg_exe, cover, track_id, version, workdir, warnings)
    manifest = Manifest(
        schema=1,
        track_id=track_id,
        version=version,
        created_at=utc_now(),
        source=SourceInfo(
            sha256=source_sha,
            bytes=found.bytes,
            container=found.container,
            codec=found.codec,
            sample_rate=found.sample_rate,
            channels=found.channels,
            duration_s=round(decoded, 3),
            bitrate_kbps=found.bitrate_kbps,
            lossless=found.lossless,
        ),
        tags=tags,
        loudness=loudness_summary(result.loudness, decoded),
        renditions=renditions,
        encoder=EncoderInfo(profile=profile.id, ffmpeg=built_with),
        art=art.art if art else None,
    )
    return manifest, {**result.outputs, **(art.files if art else {})}, warnings


def _built_with(settings: EncoderSettings, profile: Profile) -> str:
    """The builds that made the files, as the manifest records them."""
    if profile.engine == "oggenc":
        return (
            f"{ffmpeg_version(settings.ffmpeg_exe)} + oggenc {oggenc_version(settings.oggenc_exe)}"
        )
    return ffmpeg_version(settings.ffmpeg_exe)


def _same_bytes(published: Manifest, rebuilt: Manifest) -> None:
    """--force may only restore what the manifest promises, never replace it."""
    old = {r.bitrate_kbps: r.sha256 for r in published.renditions}
    new = {r.bitrate_kbps: r.sha256 for r in rebuilt.renditions}
    if old != new:
        differ = sorted(b for b in old.keys() | new.keys() if old.get(b) != new.get(b))
        raise VerificationError(
            f"--force re-encoded {', '.join(f'{b}.ogg' for b in differ)} to other bytes than "
            f"published (published with ffmpeg {published.encoder.ffmpeg}, now "
            f"{rebuilt.encoder.ffmpeg}); objects under a version never change"
        )
