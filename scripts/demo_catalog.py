"""Synthesize the demo catalogue: a few music-like tracks with tags and cover art.

Made with the bundled ffmpeg at first run and cached under ``data/demo/``:
nothing is downloaded and no audio is committed. Each track is a chord
progression with a beat envelope and a bass line, so the encoders and the
loudness meter see something closer to music than a sine tone.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg


@dataclass(frozen=True)
class DemoTrack:
    track_id: str
    title: str
    artist: str
    album: str
    year: int
    genre: str
    root_hz: float
    bpm: int
    progression: tuple[int, int, int, int]  # semitones above the root, one per bar
    seconds: int
    hue: int


DEMO_TRACKS: tuple[DemoTrack, ...] = (
    DemoTrack(
        "demo-sunrise",
        "Sunrise Over Harbour",
        "The Test Tones",
        "Synthetic Mornings",
        2024,
        "Ambient",
        220.0,
        96,
        (0, 5, 7, 3),
        48,
        30,
    ),
    DemoTrack(
        "demo-night-drive",
        "Night Drive",
        "Ogg & the Vorbises",
        "Range Requests",
        2025,
        "Synthwave",
        196.0,
        118,
        (0, 8, 3, 10),
        40,
        260,
    ),
    DemoTrack(
        "demo-cafe",
        "Café Bisection",
        "Ogg & the Vorbises",
        "Range Requests",
        2025,
        "Lo-fi",
        246.9,
        84,
        (0, 9, 5, 7),
        36,
        20,
    ),
    DemoTrack(
        "demo-edge-case",
        "Edge Case Waltz",
        "Cache Lock Quartet",
        "Single Flight",
        2026,
        "Classical",
        261.6,
        90,
        (0, 4, 9, 5),
        44,
        140,
    ),
)


def _voice_expr(track: DemoTrack, detune: float) -> str:
    bar_s = 4 * 60.0 / track.bpm
    beat_s = 60.0 / track.bpm
    p = track.progression
    semis = f"if(eq(B,0),{p[0]},if(eq(B,1),{p[1]},if(eq(B,2),{p[2]},{p[3]})))"
    semis = semis.replace("B", f"mod(floor(t/{bar_s:.4f}),4)")
    root = f"({track.root_hz * detune:.3f}*pow(2,({semis})/12))"
    env = f"(0.35+0.65*exp(-4*mod(t,{beat_s:.4f})))"
    chord = f"(sin(2*PI*{root}*t)+0.7*sin(2*PI*{root}*1.2599*t)+0.6*sin(2*PI*{root}*1.4983*t))"
    bass = f"0.8*sin(2*PI*{root}*0.5*t)*exp(-2*mod(t,{2 * beat_s:.4f}))"
    fade = f"min(1,t/2)*min(1,({track.seconds}-t)/3)"
    return f"0.16*{fade}*({env}*{chord}+{bass})"


def _run_lavfi(ffmpeg: str, source: str, args: list[str]) -> None:
    """Run ffmpeg quietly on a synthesized (lavfi) input, overwriting the output."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    subprocess.run([*cmd, *args], check=True)


def render_track(track: DemoTrack, out_dir: Path, ffmpeg: str | None = None) -> Path:
    """Render one track to FLAC with tags and an attached cover; reuse it when present."""
    ffmpeg = ffmpeg or imageio_ffmpeg.get_ffmpeg_exe()
    out = out_dir / f"{track.track_id}.flac"
    if out.exists() and out.stat().st_size > 0:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    cover = out_dir / f"{track.track_id}.png"
    _run_lavfi(
        ffmpeg,
        f"gradients=s=300x300:c0=0x{track.hue % 256:02x}3366:c1=0xf0c040:duration=1:speed=0.1",
        [
            "-vf",
            f"hue=h={track.hue}",
            "-frames:v",
            "1",
            str(cover),
        ],
    )
    left, right = _voice_expr(track, 1.0), _voice_expr(track, 1.003)
    tmp = out.with_suffix(".tmp.flac")
    _run_lavfi(
        ffmpeg,
        f"aevalsrc='{left}|{right}':s=44100:d={track.seconds}",
        [
            "-i",
            str(cover),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "flac",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
            "-metadata",
            f"title={track.title}",
            "-metadata",
            f"artist={track.artist}",
            "-metadata",
            f"album={track.album}",
            "-metadata",
            f"date={track.year}",
            "-metadata",
            f"genre={track.genre}",
            str(tmp),
        ],
    )
    tmp.replace(out)
    return out


def build_catalog(out_dir: str | Path = "data/demo") -> Path:
    """Render every demo track and write ``catalog.csv`` for ``encoder batch``; return its path."""
    out_dir = Path(out_dir)
    return write_catalog(DEMO_TRACKS, out_dir / "src", out_dir / "catalog.csv")


def write_catalog(tracks: Iterable[DemoTrack], src: Path, catalog: Path) -> Path:
    """Render ``tracks`` into ``src`` and list them in ``catalog`` (the ``encoder batch`` CSV).

    Shared with the end-to-end tests, which publish shorter cuts of the same
    tracks, so the CSV columns the encoder reads are written in one place.
    """
    rows = []
    for track in tracks:
        path = render_track(track, src)
        rows.append(
            {
                "source": str(path.resolve()),
                "track_id": track.track_id,
                "title": track.title,
                "artist": track.artist,
                "album": track.album,
                "year": str(track.year),
                "genre": track.genre,
            }
        )
    with open(catalog, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return catalog


if __name__ == "__main__":
    print(build_catalog(sys.argv[1] if len(sys.argv) > 1 else "data/demo"))
