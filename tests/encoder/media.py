"""Test audio made on the spot with the ffmpeg binary (short clips, so the suite stays fast).

:func:`build_corpus` writes every file the encoder tests use into one folder
and returns ``name -> path``. It runs once per session (see conftest.py).
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Two slowly beating chords, a tremolo envelope and a little noise: enough
# spectral movement that the encoders behave as they do on music.
MUSIC_EXPR = (
    "0.30*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*1.5*t))+0.15*sin(2*PI*330*t)"
    "+0.08*sin(2*PI*1760*t)*(0.5+0.5*sin(2*PI*3*t))+0.04*(2*random(0)-1)"
    "|0.30*sin(2*PI*277*t)*(0.6+0.4*sin(2*PI*1.1*t))+0.15*sin(2*PI*440*t)"
    "+0.08*sin(2*PI*2217*t)*(0.5+0.5*sin(2*PI*2.5*t))+0.04*(2*random(1)-1)"
)
MUSIC_SECONDS = 6.0
TAGS = {
    "title": "Blue Sine",
    "artist": "The Oscillators",
    "album": "Test Tones",
    "date": "2024",
    "genre": "Electronic",
}


def music_source(seconds: float, rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"aevalsrc='{MUSIC_EXPR}':s={rate}:d={seconds}"]


def run(ffmpeg: str, *args: str) -> None:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _truncate(src: Path, dest: Path, fraction: float = 0.5) -> None:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])


def _damage(src: Path, dest: Path, start: float, length: float) -> None:
    """Overwrite bytes in the middle: ``length`` is a fraction of the file or a byte count."""
    data = bytearray(src.read_bytes())
    first = int(len(data) * start)
    count = int(len(data) * length) if length < 1 else int(length)
    data[first : first + count] = bytes(count)
    dest.write_bytes(bytes(data))


def _tag_flac(path: Path, cover_png: Path) -> None:
    from mutagen.flac import FLAC, Picture

    flac = FLAC(path)
    for key, value in TAGS.items():
        flac[key] = value
    pic = Picture()
    pic.type = 3
    pic.mime = "image/png"
    pic.desc = "front"
    pic.width = pic.height = 32
    pic.depth = 24
    pic.data = cover_png.read_bytes()
    flac.add_picture(pic)
    flac.save()


def build_corpus(ffmpeg: str, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    p = {
        name: out / name
        for name in (
            "music.wav",
            "music.flac",
            "tagged.flac",
            "mono.flac",
            "surround51.flac",
            "rate8k.wav",
            "rate48k.flac",
            "rate96k.flac",
            "mp3_128.mp3",
            "aac.m4a",
            "video.mp4",
            "video_only.mp4",
            "vorbis.ogg",
            "two_streams.mka",
            "silence.flac",
            "short.wav",
            "cover.png",
            "empty.flac",
            "text.mp3",
            "truncated.mp3",
            "truncated.flac",
            "truncated.ogg",
            "corrupt.flac",
            "no_samples.wav",
            "glitch.flac",
            "other_master.flac",
        )
    }
    run(ffmpeg, *music_source(MUSIC_SECONDS), "-sample_fmt", "s16", str(p["music.wav"]))
    wav = str(p["music.wav"])

    jobs = [
        # 4096-sample FLAC frames (93 ms) whichever ffmpeg builds the corpus: glitch.flac loses one
        ("-i", wav, "-c:a", "flac", "-frame_size", "4096", str(p["music.flac"])),
        ("-i", wav, "-c:a", "flac", str(p["tagged.flac"])),
        ("-i", wav, "-t", "4", "-ac", "1", "-c:a", "flac", str(p["mono.flac"])),
        (
            "-i", wav, "-t", "4", "-af",
            "pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.2*c0|BL=0.6*c0|BR=0.6*c1",
            "-c:a", "flac", str(p["surround51.flac"]),
        ),
        ("-i", wav, "-t", "4", "-ar", "8000", str(p["rate8k.wav"])),
        ("-i", wav, "-t", "4", "-ar", "48000", "-c:a", "flac", str(p["rate48k.flac"])),
        (
            *music_source(4, 96000), "-sample_fmt", "s32", "-c:a", "flac",
            str(p["rate96k.flac"]),
        ),
        (
            "-i", wav, "-c:a", "libmp3lame", "-b:a", "128k",
            *[a for k, v in TAGS.items() for a in ("-metadata", f"{k}={v}")],
            str(p["mp3_128.mp3"]),
        ),
        ("-i", wav, "-c:a", "aac", "-b:a", "192k", str(p["aac.m4a"])),
        (
            "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=3", "-i", wav, "-map", "0:v",
            "-map", "1:a", "-shortest", "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "192k",
            str(p["video.mp4"]),
        ),
        (
            "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=2", "-c:v", "mpeg4",
            str(p["video_only.mp4"]),
        ),
        ("-i", wav, "-c:a", "libvorbis", "-q:a", "4", str(p["vorbis.ogg"])),
        (
            "-i", wav, "-f", "lavfi", "-i", "sine=f=440:d=6", "-map", "0:a", "-map", "1:a",
            "-t", "3", "-c:a", "flac", str(p["two_streams.mka"]),
        ),
        (
            "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "3", "-c:a", "flac",
            str(p["silence.flac"]),
        ),
        ("-i", wav, "-t", "0.25", str(p["short.wav"])),
        ("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "0", str(p["no_samples.wav"])),
        ("-f", "lavfi", "-i", "color=c=blue:s=32x32", "-frames:v", "1", str(p["cover.png"])),
        (*music_source(5), "-af", "volume=0.5", "-c:a", "flac", str(p["other_master.flac"])),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda args: run(ffmpeg, *args), jobs))

    _tag_flac(p["tagged.flac"], p["cover.png"])
    p["empty.flac"].write_bytes(b"")
    p["text.mp3"].write_text("this is not audio at all\n" * 200)
    _truncate(p["mp3_128.mp3"], p["truncated.mp3"])
    _truncate(p["music.flac"], p["truncated.flac"])
    _truncate(p["vorbis.ogg"], p["truncated.ogg"])
    _damage(p["music.flac"], p["corrupt.flac"], start=0.2, length=0.6)  # 60% zeroed
    _damage(p["music.flac"], p["glitch.flac"], start=0.5, length=16)  # one FLAC frame lost
    return p
