"""Check renditions: freshly encoded ones before publishing, stored ones on demand.

Before publishing (:func:`check_rendition`): the file opens as Ogg Vorbis, is
44.1 kHz stereo, lasts within 0.1 s of the decoded source, and its average
bitrate is the real one (size * 8 / length; mutagen's ``bitrate`` for Ogg is
the nominal header value). In ``abr`` mode the audio bitrate must be within
+-10% of the target.

In the store (:func:`verify_track`, ``encoder verify``): every rendition the
manifest lists exists, has the recorded size and sha256, and decodes cleanly; so do
the cover art images it lists (size and sha256; they are small, so cheap to check).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from encoder.errors import VerificationError
from encoder.probe import ogg_tail_complete
from encoder.profile import Profile
from encoder.transcode import ffmpeg_input
from origin.errors import ObjectNotFound, StoreError
from origin.manifest import read_latest, read_manifest
from origin.store import ObjectStore, sha256_file

DURATION_TOLERANCE_S = 0.1
ABR_TOLERANCE = 0.10
# Managed bitrate is enforced over a window of about a second; shorter clips
# are all start-up, so their rate says nothing about the encoder's settings.
ABR_MIN_CHECKED_S = 2.0


@dataclass(frozen=True)
class RenditionCheck:
    bitrate_kbps: int
    path: Path
    bytes: int
    sha256: str
    duration_s: float
    avg_bitrate_kbps: float
    sample_rate: int
    channels: int


def _header_bytes(path: Path) -> int:
    """Bytes of the pages before the first audio page (the three Vorbis header packets)."""
    from mutagen.ogg import OggPage

    total = 0
    with open(path, "rb") as fh:
        while True:
            try:
                page = OggPage(fh)
            except Exception:  # noqa: BLE001 - end of file or a damaged page: stop counting
                break
            if page.position > 0 or page.last:
                break
            total += page.size
    return total


def check_rendition(
    path: Path, bitrate_kbps: int, *, decoded_duration_s: float, profile: Profile
) -> RenditionCheck:
    """Verify one encoded file; raise :class:`VerificationError` naming what is wrong."""
    from mutagen import MutagenError
    from mutagen.oggvorbis import OggVorbis

    name = f"{bitrate_kbps}.ogg"
    try:
        info = OggVorbis(path).info
    except (MutagenError, OSError) as exc:
        raise VerificationError(f"{name} does not open as Ogg Vorbis: {exc}") from exc
    if info.sample_rate != profile.sample_rate or info.channels != profile.channels:
        raise VerificationError(
            f"{name} is {info.sample_rate} Hz / {info.channels} ch, expected "
            f"{profile.sample_rate} Hz / {profile.channels} ch"
        )
    length = float(info.length)
    if abs(length - decoded_duration_s) > DURATION_TOLERANCE_S:
        raise VerificationError(
            f"{name} lasts {length:.3f}s but the source decoded to {decoded_duration_s:.3f}s"
        )
    size = path.stat().st_size
    avg = size * 8 / length / 1000 if length > 0 else 0.0
    if profile.name == "abr" and length >= ABR_MIN_CHECKED_S:
        audio_kbps = (size - _header_bytes(path)) * 8 / length / 1000
        if abs(audio_kbps - bitrate_kbps) > ABR_TOLERANCE * bitrate_kbps:
            raise VerificationError(
                f"{name} averages {audio_kbps:.1f} kbps, outside +-10% of {bitrate_kbps}"
            )
    return RenditionCheck(
        bitrate_kbps=bitrate_kbps,
        path=path,
        bytes=size,
        sha256=sha256_file(path),
        duration_s=round(length, 3),
        avg_bitrate_kbps=round(avg, 1),
        sample_rate=info.sample_rate,
        channels=info.channels,
    )


# -- stored renditions (encoder verify) ---------------------------------------------


@dataclass
class TrackReport:
    track_id: str
    version: str | None = None
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.checked > 0


def decode_problem(ffmpeg: str, path: Path, expected_duration_s: float | None = None) -> str | None:
    """None if ``path`` is a whole Ogg stream that decodes without one error, else why not.

    ffmpeg decodes a truncated Ogg file without complaint, so the end-of-stream
    page and (when known) the decoded duration are checked as well.
    """
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 65536))
        if not ogg_tail_complete(fh.read()):
            return "the file does not end with a complete end-of-stream page (truncated)"
    proc = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", ffmpeg_input(path)]
        + ["-f", "null", "-progress", "pipe:1", "-"],
        capture_output=True,
        timeout=600,
        check=False,
    )
    text = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or text:
        return text.splitlines()[0] if text else f"ffmpeg exited {proc.returncode}"
    times = re.findall(rb"^out_time_us=(\d+)", proc.stdout, re.M)
    decoded = int(times[-1]) / 1e6 if times else 0.0
    if (
        expected_duration_s is not None
        and abs(decoded - expected_duration_s) > DURATION_TOLERANCE_S
    ):
        return f"decodes to {decoded:.3f}s, the manifest says {expected_duration_s:.3f}s"
    return None


def _download(store: ObjectStore, key: str, dest: Path) -> str:
    digest = hashlib.sha256()
    with store.open_range(key) as reader, open(dest, "wb") as fh:
        for chunk in reader:
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def verify_track(
    store: ObjectStore,
    track_id: str,
    ffmpeg: str,
    *,
    version: str | None = None,
    decode: bool = True,
) -> TrackReport:
    """Check the ``version`` (default: latest) of ``track_id`` in ``store``."""
    report = TrackReport(track_id)
    try:
        named_by_latest = version is None
        if version is None:
            version = read_latest(store, track_id).version
        report.version = version
        manifest = read_manifest(store, track_id, version, named_by_latest=named_by_latest)
    except StoreError as exc:  # missing, damaged, or the store is down
        report.problems.append(str(exc))
        return report
    if not manifest.renditions:
        report.problems.append("manifest lists no renditions")
    with tempfile.TemporaryDirectory(prefix="encoder-verify-") as tmp:
        for rendition in manifest.renditions:
            name = f"{rendition.bitrate_kbps}.ogg"
            report.checked += 1
            try:
                info = store.stat(rendition.key)
                if info.size != rendition.bytes:
                    report.problems.append(
                        f"{name}: {info.size} bytes stored, manifest says {rendition.bytes}"
                    )
                    continue
                local = Path(tmp) / name
                sha = _download(store, rendition.key, local)
            except ObjectNotFound:
                report.problems.append(f"{name}: missing from the store")
                continue
            except StoreError as exc:
                report.problems.append(f"{name}: {exc}")
                continue
            if sha != rendition.sha256:
                report.problems.append(f"{name}: sha256 {sha[:12]}... does not match the manifest")
                continue
            if decode and (problem := decode_problem(ffmpeg, local, rendition.duration_s)):
                report.problems.append(f"{name}: does not decode cleanly: {problem}")
        for image in manifest.art.images() if manifest.art else ():  # not counted: renditions
            if problem := _stored_problem(store, image.key, image.bytes, image.sha256):
                report.problems.append(f"{image.key.rpartition('/')[2]}: {problem}")
    return report


def _stored_problem(store: ObjectStore, key: str, size: int, sha256: str) -> str | None:
    """Why the object at ``key`` is not ``size`` bytes hashing to ``sha256``, or None."""
    digest = hashlib.sha256()
    length = 0
    try:
        with store.open_range(key) as reader:
            for chunk in reader:
                digest.update(chunk)
                length += len(chunk)
    except ObjectNotFound:
        return "missing from the store"
    except StoreError as exc:
        return str(exc)
    if length != size:
        return f"{length} bytes stored, manifest says {size}"
    if digest.hexdigest() != sha256:
        return f"sha256 {digest.hexdigest()[:12]}... does not match the manifest"
    return None
