"""Probe a source before encoding: what it is, how long it claims to be, whether to accept it.

Two views are combined. mutagen reads tags, cover art and the header duration
of the formats it knows. ffmpeg (the bundled build has no ffprobe) reads
everything else from ``ffmpeg -i SOURCE``'s stderr: container, streams, codec,
duration, input metadata. The parsing is a pure function
(:func:`parse_ffmpeg_info`) so its fiddly cases have their own tests.

The probe only rejects what is wrong from the headers alone (empty, not
media, no audio, too long, an Ogg stream cut short). A truncated file whose
header still promises the full length is caught after the transcode, by
comparing the decoded duration with :attr:`SourceProbe.duration_s`
(see :func:`check_decoded_duration`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from encoder.errors import InputError, TranscodeError
from encoder.tagging import Cover, cover_from_mutagen, tags_from_ffmpeg, tags_from_mutagen
from encoder.transcode import ffmpeg_input

LOSSLESS_CODECS = frozenset(
    {"flac", "alac", "ape", "tta", "wavpack", "mlp", "truehd", "shorten", "tak", "s302m"}
)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "4.1": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
    "7.1(wide)": 8,
    "octagonal": 8,
}
_IMAGE_DEMUXERS = re.compile(r"(_pipe|^image2|^gif|^webp|^apng)")

_INPUT_RE = re.compile(r"^Input #0, (?P<formats>.+?), from '")
_DURATION_RE = re.compile(
    r"^\s+Duration: (?:(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)|N/A)"
    r"(?:, start: [-\d.]+)?(?:, bitrate: (?:(?P<br>\d+) kb/s|N/A))?"
)
_STREAM_RE = re.compile(
    r"^\s+Stream #0:(?P<idx>\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (?P<type>\w+): (?P<rest>.*)"
)
_KV_RE = re.compile(r"(?P<indent>\s+)(?P<key>[^:]+?)\s*: (?P<value>.*)")


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int | None = None
    channels: int | None = None
    layout: str | None = None
    bitrate_kbps: float | None = None


@dataclass(frozen=True)
class FfmpegInfo:
    """What ``ffmpeg -i`` says about input #0."""

    container: str | None = None
    duration_s: float | None = None
    duration_estimated: bool = False
    bitrate_kbps: float | None = None
    audio: tuple[AudioStream, ...] = ()
    video_streams: int = 0  # real video, not attached cover pictures
    metadata: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def is_image(self) -> bool:
        return bool(self.container and _IMAGE_DEMUXERS.search(self.container))


def _container_name(formats: str) -> str:
    names = [n.strip() for n in formats.split(",")]
    if "mp4" in names or "mov" in names:
        return "mp4"
    return names[0]


def _parse_audio(rest: str) -> AudioStream:
    parts = [p.strip() for p in re.split(r",(?![^(]*\))", rest)]
    codec = parts[0].split(" ")[0] if parts and parts[0] else "unknown"
    sample_rate = channels = None
    layout = None
    bitrate = None
    for part in parts[1:]:
        if m := re.fullmatch(r"(\d+) Hz", part):
            sample_rate = int(m[1])
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?) kb/s(?: \(default\))?.*", part):
            bitrate = float(m[1])
        elif m := re.match(r"(\d+) channels", part):
            channels = int(m[1])
        elif sample_rate is not None and layout is None and channels is None:
            # the field after the rate is the channel layout ("stereo", "5.1(side)", ...)
            layout = part.split(" ")[0]
            channels = _LAYOUT_CHANNELS.get(layout)
    return AudioStream(codec, sample_rate, channels, layout, bitrate)


def parse_ffmpeg_info(stderr: str) -> FfmpegInfo:
    """Parse the stream report ``ffmpeg -i`` prints for input #0 (pure; ffmpeg 5 to 9)."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if _INPUT_RE.match(line)), None)
    if start is None:
        errors = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(" ")]
        return FfmpegInfo(error=errors[-1] if errors else "ffmpeg could not read the file")
    container = _container_name(_INPUT_RE.match(lines[start])["formats"])
    duration = bitrate = None
    audio: list[AudioStream] = []
    video = 0
    metadata: dict[str, str] = {}
    section = "input"  # "input": Input-level lines; "input-meta": its Metadata block
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break  # Output #0, Stream mapping, errors: the input report is over
        if line.strip() == "Metadata:":
            section = "input-meta" if line.startswith("  Metadata") else "stream-meta"
            continue
        if m := _DURATION_RE.match(line):
            section = "input"
            if m["h"] is not None:
                duration = int(m["h"]) * 3600 + int(m["m"]) * 60 + float(m["s"])
            if m["br"]:
                bitrate = float(m["br"])
            continue
        if m := _STREAM_RE.fullmatch(line):
            section = "stream"
            kind = m["type"]
            if kind == "Audio":
                audio.append(_parse_audio(m["rest"]))
            elif kind == "Video" and "(attached pic)" not in m["rest"]:
                video += 1
            continue
        if section == "input-meta" and (kv := _KV_RE.fullmatch(line)) and len(kv["indent"]) == 4:
            metadata.setdefault(kv["key"].strip().lower(), kv["value"].strip())
    return FfmpegInfo(
        container=container,
        duration_s=duration,
        duration_estimated="Estimating duration from bitrate" in stderr,
        bitrate_kbps=bitrate,
        audio=tuple(audio),
        video_streams=video,
        metadata=metadata,
    )


def ogg_tail_complete(tail: bytes) -> bool:
    """True when the last Ogg page in ``tail`` (the file's last bytes) is whole and ends the stream.

    A writer sets the end-of-stream flag (0x04) on a stream's final page; a file
    cut short ends in a partial page, or in a whole page without that flag.
    """
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        header_end = pos + 27
        if header_end <= len(tail) and tail[pos + 4] == 0:
            segments = tail[pos + 26]
            if header_end + segments <= len(tail):
                body = sum(tail[header_end : header_end + segments])
                if header_end + segments + body == len(tail):
                    return bool(tail[pos + 5] & 0x04)
                return False  # a partial (or over-long) final page
        # "OggS" inside packet data, or a header cut off: look further back
        pos = tail.rfind(b"OggS", 0, pos)
    return False


@dataclass(frozen=True)
class SourceProbe:
    """Everything the pipeline needs to know about a source before transcoding."""

    path: Path
    bytes: int
    container: str
    codec: str
    sample_rate: int | None
    channels: int | None
    duration_s: float | None  # what the headers claim; None when unknown
    duration_trusted: bool  # False when ffmpeg guessed it from the bitrate
    bitrate_kbps: float | None  # audio bitrate of a lossy source, None when unknown/lossless
    lossless: bool
    audio_streams: int
    tags: dict[str, str]
    cover: Cover | None
    warnings: tuple[str, ...] = ()


def run_ffmpeg_info(path: Path, ffmpeg: str, timeout: float = 60.0) -> FfmpegInfo:
    try:
        proc = subprocess.run(
            # file:/absolute/path: a name like "concat:x.flac" must not open another file
            [ffmpeg, "-hide_banner", "-nostdin", "-i", ffmpeg_input(path)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise TranscodeError(f"cannot run ffmpeg {ffmpeg!r}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"ffmpeg took over {timeout:.0f}s to read the headers") from exc
    return parse_ffmpeg_info(proc.stderr.decode("utf-8", "replace"))


def _mutagen_file(path: Path):
    import mutagen

    try:
        # mutagen.File() is falsy for a file without tags: callers test `is None`.
        return mutagen.File(path)
    except Exception:  # noqa: BLE001 - mutagen raises many types on damaged headers;
        return None  # ffmpeg's view is the fallback, and the decode pass the final judge


def _format_duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def probe(path: str | Path, ffmpeg: str, *, max_duration_s: float) -> SourceProbe:
    """Inspect ``path``; raise :class:`InputError` for anything that cannot become renditions."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"no such file: {str(path)!r}") from None
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not path.is_file():
        raise InputError(f"not a regular file: {str(path)!r}")
    if st.st_size == 0:
        raise InputError("empty file (0 bytes)")

    info = run_ffmpeg_info(path, ffmpeg)
    if info.error is not None:
        raise InputError(f"not an audio file ffmpeg can read ({info.error})")
    if not info.audio:
        if info.is_image:
            raise InputError(f"not audio: the file is an image ({info.container})")
        if info.video_streams:
            raise InputError("video without an audio stream")
        raise InputError(f"no audio stream in the file ({info.container})")

    warnings: list[str] = []
    if len(info.audio) > 1:
        warnings.append(
            f"the source has {len(info.audio)} audio streams; encoding the first one only"
        )
    first = info.audio[0]
    mfile = _mutagen_file(path)
    minfo = getattr(mfile, "info", None) if mfile is not None else None

    m_length = getattr(minfo, "length", None) or None
    duration = m_length if m_length and len(info.audio) == 1 else info.duration_s
    trusted = not (info.duration_estimated and duration == info.duration_s)
    if duration is not None and duration > max_duration_s:
        raise InputError(
            f"the source is {_format_duration(duration)} long; the limit is "
            f"{_format_duration(max_duration_s)} (ENCODER_MAX_DURATION_S)"
        )

    codec = first.codec
    lossless = codec in LOSSLESS_CODECS or codec.startswith("pcm_")
    bitrate = None
    if not lossless:
        bitrate = first.bitrate_kbps
        if bitrate is None and minfo is not None and getattr(minfo, "bitrate", 0):
            bitrate = round(minfo.bitrate / 1000, 1)
        if bitrate is None and len(info.audio) == 1 and not info.video_streams:
            bitrate = info.bitrate_kbps

    if info.container == "ogg":
        with open(path, "rb") as fh:
            fh.seek(max(0, st.st_size - 65536))
            if not ogg_tail_complete(fh.read()):
                raise InputError(
                    "truncated or corrupt Ogg stream: the file does not end with a "
                    "complete end-of-stream page"
                )

    tags = tags_from_mutagen(mfile) if mfile is not None else {}
    if not tags:
        tags = tags_from_ffmpeg(info.metadata)
    cover = cover_from_mutagen(mfile) if mfile is not None else None

    return SourceProbe(
        path=path,
        bytes=st.st_size,
        container=info.container or "unknown",
        codec=codec,
        sample_rate=first.sample_rate or getattr(minfo, "sample_rate", None),
        channels=first.channels or getattr(minfo, "channels", None),
        duration_s=duration,
        duration_trusted=trusted,
        bitrate_kbps=bitrate,
        lossless=lossless,
        audio_streams=len(info.audio),
        tags=tags,
        cover=cover,
        warnings=tuple(warnings),
    )


GAP_TOLERANCE_S = 0.1


def check_decoded_duration(
    probe: SourceProbe, decoded_s: float, timeline_s: float | None = None
) -> None:
    """Reject a source whose decode came up well short of what its header promised.

    ffmpeg usually exits 0 on a truncated file (it decodes what it can), so this
    comparison is what catches a cut-off MP3, FLAC or WAV. The allowance covers
    codec priming and padding (tens of milliseconds) with a wide margin.

    ``timeline_s`` is where ffmpeg's clock ended: frames a decoder dropped in
    the middle of a damaged file leave a jump in the timestamps, so a clock
    well ahead of the samples really decoded means audio is missing inside.
    """
    if decoded_s <= 0:
        raise InputError("no audio: the source decodes to zero samples")
    if timeline_s is not None and timeline_s - decoded_s > GAP_TOLERANCE_S:
        raise InputError(
            f"corrupt source: {timeline_s - decoded_s:.2f}s of audio inside the file "
            "could not be decoded"
        )
    if probe.duration_s is None or not probe.duration_trusted:
        return
    shortfall = probe.duration_s - decoded_s
    if shortfall > 0.5 + 0.005 * probe.duration_s:
        raise InputError(
            f"truncated or corrupt source: the header says {probe.duration_s:.2f}s "
            f"but only {decoded_s:.2f}s decoded"
        )
