"""One decode, every rung encoded, loudness measured on the way: the two arrangements.

``fanout`` (the default, :mod:`encoder.fanout`): one ffmpeg decodes and meters, one
``oggenc`` per rung encodes, all at once. ``onepass`` (:func:`transcode`, here): the ONE
ffmpeg invocation below makes every rung. Both share the result, the log reading and
the failure reasons defined here.

Shape of the one-pass command (built with ffmpeg-python, see :func:`build_command`)::

    ffmpeg -i SRC \\
      -filter_complex "[0:a:0]aformat=sample_rates=44100:channel_layouts=stereo,
                        ebur128=peak=true:framelog=verbose[s0]" \\
      -map [s0]    -vn -sn -dn -ar 44100 -ac 2 -c:a libvorbis -q:a 2 ... 96.ogg \\
      -map 0:a:0   -vn -sn -dn -ar 44100 -ac 2 -c:a libvorbis -q:a 5 ... 160.ogg \\
      -map 0:a:0   -vn -sn -dn -ar 44100 -ac 2 -c:a libvorbis -q:a 9 ... 320.ogg

Why this shape:

* each output has its own ``-map 0:a:0`` (not ``asplit``): ffmpeg then runs the
  three encoders on their own threads; an ``asplit`` graph serialises them and
  doubles the wall time;
* ``-ar 44100 -ac 2`` always: libvorbis's bitrate tables fail at some rates, and
  surround is downmixed for the players we serve;
* the loudness meter sits on the cheapest branch (q2) so it overlaps with the
  heavy q9 encoder instead of adding to it, and it measures after the downmix
  and resample, i.e. what listeners hear;
* ``+bitexact`` keeps the bytes reproducible: a deterministic Ogg serial number
  and no version string, so re-encoding a version yields the same files.

Progress comes from ``-progress pipe:1`` (stdout); stderr is drained on its own
thread so neither pipe can fill up and stall ffmpeg.
"""

from __future__ import annotations

import collections
import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg

from encoder.errors import InputError, TranscodeError, one_line
from encoder.loudness import Measurement, parse_ebur128_summary
from encoder.profile import Profile, Rung

ProgressCallback = Callable[[float], None]  # seconds of output written so far

MEASURE_FILTERS = (
    ("aformat", {"sample_rates": 44100, "channel_layouts": "stereo"}),
    ("ebur128", {"peak": "true", "framelog": "verbose"}),  # verbose: no per-100ms log lines
    # Counts the samples really decoded. ffmpeg's own clock (-progress out_time) follows
    # timestamps, which jump over frames a decoder had to drop from a damaged file.
    ("astats", {"measure_perchannel": "none", "measure_overall": "Number_of_samples"}),
)
MEASURE_RATE = 44100
_SAMPLES_RE = re.compile(r"\[Parsed_astats_\d+ @ [^\]]+\] (?:\[info\] )?Number of samples: (\d+)")
_INPUT_FAILURE = re.compile(
    r"Invalid data found|Error while decoding|corrupt|Decoding error|could not find codec", re.I
)


@dataclass(frozen=True)
class TranscodeResult:
    outputs: dict[int, Path]  # bitrate -> encoded file
    timeline_s: float  # where ffmpeg's clock ended (timestamps, gaps included)
    decoded_samples: int | None  # samples per channel at 44.1 kHz really decoded
    loudness: Measurement | None
    decode_errors: int
    argv: tuple[str, ...]

    @property
    def decoded_duration_s(self) -> float:
        if self.decoded_samples is None:
            return self.timeline_s
        return self.decoded_samples / MEASURE_RATE


@lru_cache(maxsize=8)
def ffmpeg_version(exe: str) -> str:
    """``ffmpeg -version``'s version word, e.g. ``n9.0.2-17-g2a571b6068-20260930`` or ``5.1.9``."""
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-version"], capture_output=True, timeout=30, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TranscodeError(f"cannot run ffmpeg {exe!r}: {exc}") from exc
    m = re.search(r"ffmpeg version (\S+)", out)
    if not m:
        raise TranscodeError(f"{exe!r} does not look like ffmpeg")
    return m[1]


def ffmpeg_input(source: str | Path) -> str:
    """How ffmpeg must be told to open ``source``: as a file, whatever its name looks like.

    ffmpeg reads ``concat:a.flac``, ``http:x``, ``pipe:0``, ``subfile,,...:x`` and
    the like as protocols, not file names; an absolute path behind an explicit
    ``file:`` opens the very file Python hashes and mutagen reads.
    """
    return "file:" + str(Path(source).resolve())


def build_command(
    exe: str,
    source: Path,
    profile: Profile,
    outputs: Sequence[tuple[Rung, Path]],
    *,
    measure: bool = True,
) -> list[str]:
    """The argv of the single pass (see the module docstring)."""
    # "concat:b.flac" would otherwise be read as protocol "concat" (see ffmpeg_input).
    src = ffmpeg.input(ffmpeg_input(source))
    # Measure on the lowest rung: the cheapest encoder, so the meter runs beside the heaviest.
    measure_on = min(r.bitrate_kbps for r, _ in outputs) if measure else None
    nodes = []
    for rung, path in outputs:
        stream = src["a:0"]
        if rung.bitrate_kbps == measure_on:
            for name, kwargs in MEASURE_FILTERS:
                stream = stream.filter(name, **kwargs)
        options = {
            "vn": None,
            "sn": None,
            "dn": None,
            "map_metadata": -1,
            "ar": profile.sample_rate,
            "ac": profile.channels,
            "c:a": "libvorbis",
            **rung.codec_options(profile.name),
            "flags:a": "+bitexact",
            "fflags": "+bitexact",
            "f": "ogg",
        }
        nodes.append(stream.output(str(path), **options))
    cmd = (
        ffmpeg.merge_outputs(*nodes)
        .global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info")
        .global_args("-progress", "pipe:1")
        .overwrite_output()
    )
    return cmd.compile(cmd=exe)


def drain_lines(pipe, sink: collections.deque[str]) -> None:
    for raw in iter(pipe.readline, b""):
        sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
    pipe.close()


def _failure_reason(lines: Sequence[str]) -> str:
    errors = [ln for ln in lines if "[error]" in ln or "[fatal]" in ln]
    pick = errors[-1] if errors else (lines[-1] if lines else "no output")
    return one_line(re.sub(r"^(\[[^\]]*\] )+", "", pick))


def transcode(
    exe: str,
    source: Path,
    profile: Profile,
    rungs: Sequence[Rung],
    workdir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    stall_timeout_s: float = 300.0,
) -> TranscodeResult:
    """Run the single pass into ``workdir``; raise on failure, never leave ffmpeg running."""
    outputs = [(rung, workdir / f"{rung.bitrate_kbps}.ogg") for rung in rungs]
    argv = build_command(exe, source, profile, outputs)
    stderr_lines: collections.deque[str] = collections.deque(maxlen=2000)
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise TranscodeError(f"cannot run ffmpeg {exe!r}: {exc.strerror}") from exc
    drainer = threading.Thread(target=drain_lines, args=(proc.stderr, stderr_lines), daemon=True)
    drainer.start()
    last_beat = [time.monotonic()]
    stalled = threading.Event()

    def watchdog() -> None:
        while proc.poll() is None:
            if time.monotonic() - last_beat[0] > stall_timeout_s:
                stalled.set()
                proc.kill()
                return
            time.sleep(1.0)

    threading.Thread(target=watchdog, daemon=True).start()
    out_time_s = 0.0
    try:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                out_time_s = max(out_time_s, int(value) / 1e6)
            elif key == "progress":
                last_beat[0] = time.monotonic()
                if on_progress is not None:
                    on_progress(out_time_s)
        returncode = proc.wait()
    finally:
        # Interrupted (SIGTERM, Ctrl-C, a failing callback): never leave ffmpeg behind.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drainer.join(timeout=10)
        with contextlib.suppress(Exception):
            proc.stdout and proc.stdout.close()
    lines = list(stderr_lines)
    if stalled.is_set():
        raise TranscodeError(f"ffmpeg made no progress for {stall_timeout_s:.0f}s and was stopped")
    if returncode != 0:
        raise decoder_failure(returncode, lines)
    check_outputs(outputs, "ffmpeg")
    return result_from_log(outputs, out_time_s, lines, argv)


def decoder_failure(code: int, lines: Sequence[str]) -> Exception:
    """What a failed decoding ffmpeg means: bad input (one CLI line) or our failure."""
    reason = _failure_reason(lines)
    if _INPUT_FAILURE.search(reason):
        return InputError(f"corrupt source: {reason}")
    return TranscodeError(f"ffmpeg failed (exit {code}): {reason}")


def check_outputs(outputs: Sequence[tuple[Rung, Path]], writer: str) -> None:
    missing = [p.name for _, p in outputs if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise TranscodeError(f"{writer} wrote no output for {', '.join(missing)}")


def result_from_log(
    outputs: Sequence[tuple[Rung, Path]],
    timeline_s: float,
    lines: Sequence[str],
    argv,
    *,
    samples: int | None = None,
) -> TranscodeResult:
    """The outcome, read from the decoding ffmpeg's log (meter summary, samples counted
    by astats unless ``samples`` counted them already)."""
    log = "\n".join(lines)
    if samples is None:
        counted = _SAMPLES_RE.findall(log)
        samples = int(counted[-1]) if counted else None
    return TranscodeResult(
        outputs={rung.bitrate_kbps: path for rung, path in outputs},
        timeline_s=timeline_s,
        decoded_samples=samples,
        loudness=parse_ebur128_summary(log),
        decode_errors=sum(1 for ln in lines if "[error]" in ln and "Parsed_" not in ln),
        argv=tuple(argv),
    )
