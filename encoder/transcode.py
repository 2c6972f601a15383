"""The ONE ffmpeg invocation: decode once, encode every rung, measure loudness on the way.

Shape of the command (built with ffmpeg-python, see :func:`build_command`)::

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
import fcntl
import os
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


def _drain(pipe, sink: collections.deque[str]) -> None:
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
    drainer = threading.Thread(target=_drain, args=(proc.stderr, stderr_lines), daemon=True)
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
        raise _decoder_failure(returncode, lines)
    _check_outputs(outputs, "ffmpeg")
    return _result(outputs, out_time_s, lines, argv)


def _decoder_failure(code: int, lines: Sequence[str]) -> Exception:
    """What a failed decoding ffmpeg means: bad input (one CLI line) or our failure."""
    reason = _failure_reason(lines)
    if _INPUT_FAILURE.search(reason):
        return InputError(f"corrupt source: {reason}")
    return TranscodeError(f"ffmpeg failed (exit {code}): {reason}")


def _check_outputs(outputs: Sequence[tuple[Rung, Path]], writer: str) -> None:
    missing = [p.name for _, p in outputs if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise TranscodeError(f"{writer} wrote no output for {', '.join(missing)}")


def _result(
    outputs: Sequence[tuple[Rung, Path]], timeline_s: float, lines: Sequence[str], argv
) -> TranscodeResult:
    """The outcome, read from the decoding ffmpeg's log (meter summary, samples counted)."""
    log = "\n".join(lines)
    samples = _SAMPLES_RE.findall(log)
    return TranscodeResult(
        outputs={rung.bitrate_kbps: path for rung, path in outputs},
        timeline_s=timeline_s,
        decoded_samples=int(samples[-1]) if samples else None,
        loudness=parse_ebur128_summary(log),
        decode_errors=sum(1 for ln in lines if "[error]" in ln and "Parsed_" not in ln),
        argv=tuple(argv),
    )


# --- the fan-out arrangement: decode once, one oggenc per rung, in parallel -------------

PCM_BYTES_PER_S = MEASURE_RATE * 2 * 4  # 44.1 kHz, stereo, 32-bit float
_PIPE_BYTES = 1 << 20  # each encoder's pipe buffer: ~3 s of audio, so no encoder waits on another
_CHUNK = 1 << 17
_F_SETPIPE_SZ = 1031


@lru_cache(maxsize=8)
def oggenc_version(exe: str) -> str:
    """``oggenc --version``'s version word, e.g. ``1.4.2``."""
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, timeout=30, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TranscodeError(f"cannot run oggenc {exe!r}: {exc}") from exc
    m = re.search(r"vorbis-tools (\S+)", out)
    if not m:
        raise TranscodeError(f"{exe!r} does not look like oggenc")
    return m[1]


def build_fanout_commands(
    exe: str,
    oggenc: str,
    source: Path,
    profile: Profile,
    outputs: Sequence[tuple[Rung, Path]],
    *,
    progress_fd: int | None = None,
) -> tuple[list[str], list[list[str]]]:
    """The decoder's argv and one oggenc argv per rung (see :func:`transcode_fanout`).

    The decoder carries the meter (``aformat → ebur128=peak=true → astats``) and writes
    44.1 kHz stereo float WAV to stdout; every oggenc reads that same stream on stdin.
    """
    graph = ",".join(
        name + "=" + ":".join(f"{k}={v}" for k, v in kwargs.items())
        for name, kwargs in MEASURE_FILTERS
    )
    decoder = [exe, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info"]
    if progress_fd is not None:
        decoder += ["-progress", f"pipe:{progress_fd}"]
    decoder += ["-i", ffmpeg_input(source), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    decoder += ["-map_metadata", "-1", "-af", graph]
    decoder += ["-ar", str(profile.sample_rate), "-ac", str(profile.channels)]
    decoder += ["-c:a", "pcm_f32le", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    decoder += ["-f", "wav", "pipe:1"]
    encoders = []
    for rung, path in outputs:
        # -s: a fixed Ogg serial number (reproducible bytes); --ignorelength: a WAV on a pipe
        # has no real length; -Q: errors only.
        argv = [oggenc, "-Q", "--ignorelength", "-s", str(rung.bitrate_kbps)]
        argv += [*rung.oggenc_args(profile.name), "-o", str(path), "-"]
        encoders.append(argv)
    return decoder, encoders


def _read_progress(fd: int, out_time: list[float], beat: list[float]) -> None:
    with open(fd, "rb", closefd=True) as fh:
        for raw in fh:
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                out_time[0] = max(out_time[0], int(value) / 1e6)
            elif key == "progress":
                beat[0] = time.monotonic()


def transcode_fanout(
    exe: str,
    oggenc: str,
    source: Path,
    profile: Profile,
    rungs: Sequence[Rung],
    workdir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    stall_timeout_s: float = 300.0,
) -> TranscodeResult:
    """Decode once with ffmpeg, encode every rung with its own oggenc, all at the same time.

    The same checks as :func:`transcode` (ffmpeg's clock vs the samples astats counted,
    loudness with true peak on the decoded stream); the PCM is copied to each encoder's
    stdin here, so an encoder that dies is noticed at once. Raises like :func:`transcode`
    and never leaves a process running.
    """
    outputs = [(rung, workdir / f"{rung.bitrate_kbps}.ogg") for rung in rungs]
    progress_r, progress_w = os.pipe()
    decoder_argv, encoder_argvs = build_fanout_commands(
        exe, oggenc, source, profile, outputs, progress_fd=progress_w
    )
    procs: list[subprocess.Popen] = []
    dec_lines: collections.deque[str] = collections.deque(maxlen=2000)
    enc_lines = [collections.deque(maxlen=50) for _ in outputs]
    drainers: list[threading.Thread] = []
    out_time = [0.0]
    last_beat = [time.monotonic()]
    stalled = threading.Event()
    broken: int | None = None  # index of an encoder that stopped reading
    try:
        try:
            for argv, lines in zip(encoder_argvs, enc_lines, strict=True):
                enc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                procs.append(enc)
                with contextlib.suppress(OSError):
                    fcntl.fcntl(enc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
                drainers.append(threading.Thread(target=_drain, args=(enc.stderr, lines)))
            dec = subprocess.Popen(
                decoder_argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(progress_w,),
            )
            procs.append(dec)
        except OSError as exc:
            raise TranscodeError(
                f"cannot run {exc.filename or 'an encoder'}: {exc.strerror}"
            ) from exc
        finally:
            os.close(progress_w)
        drainers.append(threading.Thread(target=_drain, args=(dec.stderr, dec_lines)))
        drainers.append(
            threading.Thread(target=_read_progress, args=(progress_r, out_time, last_beat))
        )
        for t in drainers:
            t.daemon = True
            t.start()

        def watchdog() -> None:
            while any(p.poll() is None for p in procs):  # the encoders and the decoder
                if time.monotonic() - last_beat[0] > stall_timeout_s:
                    stalled.set()
                    for p in procs:
                        with contextlib.suppress(OSError):
                            p.kill()
                    return
                time.sleep(1.0)

        threading.Thread(target=watchdog, daemon=True).start()
        encoders = procs[:-1]
        sinks = [p.stdin.fileno() for p in encoders]
        source_fd = dec.stdout.fileno()
        received = 0
        reported = 0.0
        while True:
            chunk = os.read(source_fd, _CHUNK)
            if not chunk:
                break
            last_beat[0] = time.monotonic()
            received += len(chunk)
            for i, fd in enumerate(sinks):
                view = memoryview(chunk)
                try:
                    while view:
                        view = view[os.write(fd, view) :]
                except BrokenPipeError:
                    broken = i
                    break
            if broken is not None:
                dec.kill()
                break
            seconds = received / PCM_BYTES_PER_S
            if on_progress is not None and seconds - reported >= 1.0:
                reported = seconds
                on_progress(seconds)
        for p in encoders:
            with contextlib.suppress(OSError):
                p.stdin.close()
        dec_code = dec.wait()
        enc_codes = [p.wait() for p in encoders]
    finally:
        # Interrupted (SIGTERM, Ctrl-C, a failing callback): never leave a process behind.
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in procs:
            for pipe in (p.stdin, p.stdout):
                with contextlib.suppress(Exception):
                    pipe and pipe.close()
        for t in drainers:
            if t.ident is not None:  # started (a failed start leaves some unstarted)
                t.join(timeout=10)
        if not any(t.ident is not None for t in drainers[-1:]):
            with contextlib.suppress(OSError):
                os.close(progress_r)  # its reader never started
    lines = list(dec_lines)
    if stalled.is_set():
        raise TranscodeError(
            f"the encode made no progress for {stall_timeout_s:.0f}s and was stopped"
        )
    if broken is None and dec_code != 0:
        raise _decoder_failure(dec_code, lines)
    for (_, path), code, err in zip(outputs, enc_codes, enc_lines, strict=True):
        if code != 0:
            why = one_line(err[-1]) if err else "no output"
            raise TranscodeError(f"oggenc failed for {path.name} (exit {code}): {why}")
    _check_outputs(outputs, "oggenc")
    if on_progress is not None:
        on_progress(out_time[0] or received / PCM_BYTES_PER_S)
    argv: list[str] = list(decoder_argv)
    for enc_argv in encoder_argvs:
        argv += ["|", *enc_argv]
    return _result(outputs, out_time[0], lines, argv)
