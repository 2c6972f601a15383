"""Test media: tiny clips made with the bundled ffmpeg, ingested by the real encoder CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

# name -> (lavfi source, seconds, title). 2-4 s each: the suite's whole media budget.
CLIPS: dict[str, tuple[str, float, str]] = {
    "sine": ("sine=frequency=440:sample_rate=44100", 3.0, "Sine at 440"),
    "chirp": ("sine=frequency=660:sample_rate=44100:beep_factor=4", 2.0, "Beeps"),
    "noise": ("anoisesrc=color=pink:amplitude=0.2:sample_rate=44100", 4.0, "Pink noise"),
}


@dataclass(frozen=True)
class Ingested:
    track_id: str
    version: str
    summary: dict


def make_clip(path: Path, lavfi: str, seconds: float, title: str) -> Path:
    """A stereo FLAC clip from an ffmpeg test source."""
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"{lavfi}:duration={seconds}",
            "-ac",
            "2",
            "-metadata",
            f"title={title}",
            "-metadata",
            "artist=Test Signal",
            "-c:a",
            "flac",
            "-y",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return path


def ingest(
    source: Path, track_id: str, store_url: str, title: str | None = None, *, replace=False
) -> Ingested:
    """``encoder ingest SOURCE --track-id ID --store URL``: the real encoder, as a user runs it.

    ``replace`` publishes a new master over an existing track (``--replace``)."""
    argv = [sys.executable, "-m", "encoder.cli", "ingest", str(source), "--track-id", track_id]
    argv += ["--store", store_url, "--quiet"]
    if title:
        argv += ["--title", title]
    if replace:
        argv.append("--replace")
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ), timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"encoder ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    return Ingested(track_id, summary["version"], summary)
