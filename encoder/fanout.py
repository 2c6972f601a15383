"""The fan-out arrangement (the default): decode once, one ``oggenc`` per rung, in parallel.

ONE ffmpeg decodes the source to raw 44.1 kHz stereo float PCM on a pipe, through the
loudness meter (``aformat → ebur128=peak=true``, as the one pass measures it); one
``oggenc`` (vorbis-tools, libvorbis) per rung encodes it, each fed by its own thread::

    ffmpeg -threads 1 -i SRC -af aformat=...,ebur128=peak=true:... -f f32le pipe:1
        └─▶ this process (counts the samples, adds a WAV header) ─┬─▶ oggenc -q 2 -s 96 -o 96.ogg -
                                                                  ├─▶ oggenc -q 5 ...
                                                                  └─▶ oggenc -q 9 ...

Why this shape: libvorbis is most of the CPU, and ffmpeg 9's one pass spends about a
third of its CPU in system time on thread hand-offs of libvorbis' 64-sample frames,
which oggenc does not; the three encoders spread over the cores; and each runs at its
own pace (a queue per encoder, up to ``_BACKLOG_BYTES`` behind the decoder), so none
stalls behind another on a busy machine. The bytes are the same as with one pipe per
encoder fed in lock-step (the profile's fingerprint did not change).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import queue
import re
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from encoder.errors import TranscodeError, one_line
from encoder.profile import Profile, Rung
from encoder.transcode import (
    MEASURE_FILTERS,
    MEASURE_RATE,
    ProgressCallback,
    TranscodeResult,
    check_outputs,
    decoder_failure,
    drain_lines,
    ffmpeg_input,
    result_from_log,
)

# Only the meter runs in the decoder: the samples are counted from the bytes of raw PCM
# that arrive here (astats, the one pass's counter, costs about 0.35 s of CPU per 180 s).
FANOUT_FILTERS = MEASURE_FILTERS[:2]
PCM_FRAME_BYTES = 2 * 4  # stereo, 32-bit float
PCM_BYTES_PER_S = MEASURE_RATE * PCM_FRAME_BYTES
_PIPE_BYTES = 1 << 20  # every pipe's buffer (~3 s of audio): fewer, larger reads and writes
_CHUNK = 1 << 18
# How far (~3 min of audio) the decoder may run ahead of the slowest encoder. Each encoder
# is fed from its own queue, so none waits for another: on a busy machine an encoder that
# gets a core runs instead of stalling behind one that did not (in lock-step behind 1 MiB
# pipes, one ingest took ~1.35x the wall at a load average of 14).
_BACKLOG_BYTES = 64 << 20
_F_SETPIPE_SZ = 1031
_WAVE_FORMAT_IEEE_FLOAT = 3
_UNKNOWN_LENGTH = 0xFFFFFFFF  # with --ignorelength: read to the end of the pipe


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


def wav_header(sample_rate: int, channels: int) -> bytes:
    """A float WAV header of unknown length, written ahead of the raw PCM to each oggenc."""
    block = channels * 4
    fmt = struct.pack(
        "<HHIIHH", _WAVE_FORMAT_IEEE_FLOAT, channels, sample_rate, sample_rate * block, block, 32
    )
    size = struct.pack("<I", _UNKNOWN_LENGTH)
    return b"RIFF" + size + b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + size


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

    The decoder carries the meter (``aformat → ebur128=peak=true``) and writes raw
    44.1 kHz stereo float PCM to stdout; every oggenc reads that same stream on stdin,
    behind a WAV header (:func:`wav_header`).
    """
    graph = ",".join(
        name + "=" + ":".join(f"{k}={v}" for k, v in kwargs.items())
        for name, kwargs in FANOUT_FILTERS
    )
    decoder = [exe, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info"]
    if progress_fd is not None:
        decoder += ["-progress", f"pipe:{progress_fd}"]
    # -threads 1: the decoder's frame threads cost ~0.25 s of CPU per 180 s in hand-offs (system
    # time) and save no wall here, where the decode is a small part of the work; same samples.
    decoder += ["-threads", "1", "-i", ffmpeg_input(source), "-map", "0:a:0", "-vn", "-sn"]
    decoder += ["-dn", "-map_metadata", "-1", "-af", graph]
    decoder += ["-ar", str(profile.sample_rate), "-ac", str(profile.channels)]
    decoder += ["-c:a", "pcm_f32le", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    decoder += ["-f", "f32le", "pipe:1"]
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


def _read_chunk(fd: int) -> bytes:
    """``_CHUNK`` bytes, fewer only at the end: whole chunks keep the feeders' wake-ups few."""
    pieces = []
    size = 0
    while size < _CHUNK:
        piece = os.read(fd, _CHUNK - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Feeder(threading.Thread):
    """Writes the PCM to one encoder's stdin from its own queue, then closes it."""

    def __init__(self, stdin, beat: list[float]) -> None:
        super().__init__(daemon=True)
        self.stdin = stdin
        self.beat = beat
        self.chunks: queue.Queue[bytes | None] = queue.Queue(max(1, _BACKLOG_BYTES // _CHUNK))
        self.written = 0  # bytes written (the 44-byte WAV header included)
        self.broken = False  # the encoder stopped reading

    def run(self) -> None:
        fd = self.stdin.fileno()
        while (chunk := self.chunks.get()) is not None:
            if self.broken:
                continue  # keep draining, so the reader never blocks on this queue
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:  # EPIPE: the encoder died or was stopped
                self.broken = True
                continue
            self.written += len(chunk)
            self.beat[0] = time.monotonic()
        with contextlib.suppress(OSError):
            self.stdin.close()


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

    The same checks as :func:`transcode` (ffmpeg's clock vs the samples really decoded,
    counted here from the PCM's bytes; loudness with true peak on the decoded stream).
    The PCM is handed to one feeder thread per encoder (the same bytes objects, no copy),
    so each encoder runs at its own pace, up to ``_BACKLOG_BYTES`` behind the decoder, and
    one that dies is noticed at once. Raises like :func:`transcode` and never leaves a
    process running.
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
    feeders: list[_Feeder] = []
    try:
        try:
            for argv, lines in zip(encoder_argvs, enc_lines, strict=True):
                enc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                procs.append(enc)
                with contextlib.suppress(OSError):
                    fcntl.fcntl(enc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
                drainers.append(threading.Thread(target=drain_lines, args=(enc.stderr, lines)))
            dec = subprocess.Popen(
                decoder_argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(progress_w,),
            )
            procs.append(dec)
            with contextlib.suppress(OSError):  # fewer, larger reads (the default is 64 KiB)
                fcntl.fcntl(dec.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError as exc:
            raise TranscodeError(
                f"cannot run {exc.filename or 'an encoder'}: {exc.strerror}"
            ) from exc
        finally:
            os.close(progress_w)
        drainers.append(threading.Thread(target=drain_lines, args=(dec.stderr, dec_lines)))
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
        for p in encoders:
            feeders.append(_Feeder(p.stdin, last_beat))
            feeders[-1].start()
        source_fd = dec.stdout.fileno()
        received = 0
        reported = 0.0

        def report() -> None:
            nonlocal reported
            seconds = min(f.written for f in feeders) / PCM_BYTES_PER_S  # the slowest encoder
            if on_progress is not None and seconds - reported >= 1.0:
                reported = seconds
                on_progress(seconds)

        chunk = wav_header(profile.sample_rate, profile.channels)
        while True:
            for feeder in feeders:
                feeder.chunks.put(chunk)  # blocks while this encoder is _BACKLOG_BYTES behind
            broken = next((i for i, f in enumerate(feeders) if f.broken), None)
            if broken is not None:
                dec.kill()
                break
            report()
            chunk = _read_chunk(source_fd)
            if not chunk:
                break
            last_beat[0] = time.monotonic()
            received += len(chunk)
        for feeder in feeders:
            feeder.chunks.put(None)
        while any(f.is_alive() for f in feeders):
            for feeder in feeders:
                feeder.join(timeout=0.5)
            report()
        if broken is None:
            broken = next((i for i, f in enumerate(feeders) if f.broken), None)
        dec_code = dec.wait()
        enc_codes = [p.wait() for p in encoders]
    finally:
        # Interrupted (SIGTERM, Ctrl-C, a failing callback): never leave a process behind.
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for feeder in feeders:  # their writes now fail (EPIPE): they drain and stop
            with contextlib.suppress(queue.Full):
                feeder.chunks.put(None, timeout=10)
            feeder.join(timeout=10)
        for p in procs:
            # an encoder's stdin is its feeder's to close (never under a live writer)
            for pipe in (p.stdout,) if any(f.is_alive() for f in feeders) else (p.stdin, p.stdout):
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
        raise decoder_failure(dec_code, lines)
    for (_, path), code, err in zip(outputs, enc_codes, enc_lines, strict=True):
        if code != 0:
            why = one_line(err[-1]) if err else "no output"
            raise TranscodeError(f"oggenc failed for {path.name} (exit {code}): {why}")
    check_outputs(outputs, "oggenc")
    if on_progress is not None:
        on_progress(out_time[0] or received / PCM_BYTES_PER_S)
    argv: list[str] = list(decoder_argv)
    for enc_argv in encoder_argvs:
        argv += ["|", *enc_argv]
    return result_from_log(outputs, out_time[0], lines, argv, samples=received // PCM_FRAME_BYTES)
