"""Benchmark: `encoder ingest` against the bare one-pass ffmpeg command, same binary.

    .venv/bin/python bench/encoder.py [--runs 5] [--seconds 180] [--batch 20]
                                      [--batch-seconds 60] [--jobs 1,2] [--explore]

Generates a 3-minute 44.1 kHz stereo FLAC (music-like: chords, tremolo, a
little noise), then times, interleaved and ``--runs`` times each (medians
printed; the ratio to the bare command is also taken run by run, each ingest
against the bare command timed just before it, so load that comes and goes
moves both):

* ``bare``:   ffmpeg -i SRC, three ``-map 0:a:0 ... -c:a libvorbis -q:a 2|5|9``
              outputs: the same three renditions, nothing else;
* ``argv``:   the exact command the encoder runs (adds the inline ebur128 meter
              and -progress), still bare ffmpeg;
* ``ingest``: ``python -m encoder.cli ingest`` as a subprocess into a fresh
              file:// store (hash, probe, encode, tag, verify, publish) with the
              default arrangement, ``fanout`` (one decode, one oggenc per rung);
* ``onepass``: the same ingest with ``ENCODER_ARRANGEMENT=onepass`` (the argv above);
* ``again``:  the same ingest once more ("already published").

and prints ingest/bare (goal <= 0.60), the real-time factor, and CPU seconds
(user+sys of the child processes) of each, since on a shared 2-core machine CPU
is the steadier number; the load average is printed before and after.
Then ``encoder batch`` of ``--batch`` distinct ``--batch-seconds`` tracks, once per
``--jobs`` value: tracks/min and CPU seconds per track (``--batch 0`` skips it).

``--explore`` adds the libvorbis frame-size investigation (ffmpeg 7+ feeds the
encoder 64-sample frames, one thread hand-off each): ``-frame_size 4096``,
``asetnsamples=n=4096:p=0`` in front of each encoder, and any other ffmpeg
binary given with ``--compare`` (default: /usr/bin/ffmpeg when present), each
checked for producing the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoder.profile import get_profile  # noqa: E402
from encoder.settings import load_settings  # noqa: E402
from encoder.transcode import build_command, ffmpeg_version  # noqa: E402
from tests.encoder.media import music_source  # noqa: E402


def timed(argv: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, child CPU seconds, result) of one subprocess run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(
            f"command failed ({done.returncode}): {' '.join(argv[:6])}...\n{done.stderr[-2000:]}"
        )
    return wall, cpu, done


def bare_argv(exe: str, src: Path, out: Path, extra: list[str] | None = None) -> list[str]:
    argv = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(src)]
    for q, rate in ((2, 96), (5, 160), (9, 320)):
        argv += ["-map", "0:a:0", "-vn", "-ar", "44100", "-ac", "2", *(extra or [])]
        argv += ["-c:a", "libvorbis", "-q:a", str(q), "-fflags", "+bitexact"]
        argv += ["-flags:a", "+bitexact", str(out / f"{rate}.ogg")]
    return argv


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ogg"))
    }


def _difference(a: Path, b: Path) -> str:
    """How two renditions differ: identical, N bytes at the same size, or sizes."""
    x, y = a.read_bytes(), b.read_bytes()
    if x == y:
        return f"{a.name} identical"
    if len(x) != len(y):
        return f"{a.name} size {len(x)} vs {len(y)}"
    return f"{a.name} {sum(i != j for i, j in zip(x, y, strict=True))} bytes differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--batch", type=int, default=20, help="tracks in the batch run")
    parser.add_argument("--batch-seconds", type=float, default=60.0)
    parser.add_argument("--jobs", default="1,2", help="--jobs values for the batch run")
    parser.add_argument("--explore", action="store_true", help="frame-size investigation")
    parser.add_argument("--compare", default="/usr/bin/ffmpeg", help="another ffmpeg to try")
    args = parser.parse_args()

    settings = load_settings()
    exe = settings.ffmpeg_exe
    tmp = Path(tempfile.mkdtemp(prefix="bench-encoder-"))
    try:
        src = tmp / "source.flac"
        subprocess.run(
            [exe, "-hide_banner", "-loglevel", "error", "-y", *music_source(args.seconds)]
            + ["-sample_fmt", "s16", "-c:a", "flac", str(src)],
            check=True,
        )
        print(f"ffmpeg {ffmpeg_version(exe)} ({exe})")
        print(f"source: {args.seconds:.0f} s, 44.1 kHz stereo FLAC, {src.stat().st_size} bytes")
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, "
            "shared with other work: figures are noisy"
        )

        profile = get_profile("quality")
        (tmp / "argv").mkdir()
        argv_cmd = build_command(
            exe, src, profile, [(r, tmp / "argv" / f"{r.bitrate_kbps}.ogg") for r in profile.rungs]
        )
        env = {
            **{k: v for k, v in os.environ.items() if k != "ENCODER_ARRANGEMENT"},
            "PYTHONPATH": str(ROOT),
            "ENCODER_WORK_DIR": str(tmp / "work"),
        }
        results: dict[str, list[tuple[float, float]]] = {
            "bare": [],
            "argv": [],
            "ingest": [],
            "onepass": [],
            "again": [],
        }
        summary = None
        per_run: list[float] = []  # ingest / bare of the same run
        for run in range(args.runs):
            (tmp / "bare").mkdir(exist_ok=True)
            wall, cpu, _ = timed(bare_argv(exe, src, tmp / "bare"))
            results["bare"].append((wall, cpu))
            wall, cpu, _ = timed(argv_cmd)
            results["argv"].append((wall, cpu))
            store = (tmp / f"store{run}").as_uri()
            ingest = [
                sys.executable,
                "-m",
                "encoder.cli",
                "ingest",
                str(src),
                "--track-id",
                "bench",
            ]
            ingest += ["--store", store, "--quiet"]
            wall, cpu, done = timed(ingest, env=env, text=True)
            results["ingest"].append((wall, cpu))
            per_run.append(wall / results["bare"][-1][0])
            summary = json.loads(done.stdout)
            wall, cpu, done = timed(ingest, env=env, text=True)
            assert json.loads(done.stdout)["status"] == "already_published"
            results["again"].append((wall, cpu))
            onepass = [*ingest[:-3], "--store", (tmp / f"onepass{run}").as_uri(), "--quiet"]
            one_env = {**env, "ENCODER_ARRANGEMENT": "onepass"}
            wall, cpu, _ = timed(onepass, env=one_env, text=True)
            results["onepass"].append((wall, cpu))

        best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in results.items()}
        med = {
            k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in results.items()
        }
        print(f"\n{args.runs} runs each, median (min)        wall s             cpu s")
        labels = {
            "bare": "bare ffmpeg, 3 outputs",
            "argv": "encoder's argv (+ebur128)",
            "ingest": "encoder ingest (default)",
            "onepass": "encoder ingest (onepass)",
            "again": "ingest, already published",
        }
        for key, label in labels.items():
            print(
                f"  {label:28} {med[key][0]:7.2f} ({best[key][0]:5.2f})   "
                f"{med[key][1]:7.2f} ({best[key][1]:5.2f})"
            )
        ratio = med["ingest"][0] / med["bare"][0]
        print(
            f"\ningest / bare ffmpeg (wall):  {ratio:.3f}   (goal <= 0.60; min/min: "
            f"{best['ingest'][0] / best['bare'][0]:.3f}; run by run: "
            f"median {statistics.median(per_run):.3f}, "
            f"{' '.join(f'{r:.2f}' for r in per_run)})"
        )
        print(f"onepass ingest / bare (wall): {med['onepass'][0] / med['bare'][0]:.3f}")
        print(f"ingest / bare ffmpeg (cpu):  {med['ingest'][1] / med['bare'][1]:.3f}")
        print(f"CPU s per track (ingest):    {med['ingest'][1]:.2f} for {args.seconds:.0f} s")
        own = med["onepass"][0] / med["argv"][0]
        print(
            f"onepass ingest / its argv:   {own:.3f}   (the Python side: hash, probe, tag, publish)"
        )
        print(f"load average after:          {os.getloadavg()[0]:.2f}")
        print(f"real-time factor (ingest):   {args.seconds / med['ingest'][0]:.1f}x")
        print(f"real-time factor (bare):     {args.seconds / med['bare'][0]:.1f}x")
        if summary:
            print(f"profile: {summary['profile']}")
            sizes = ", ".join(
                f"{r['bitrate_kbps']}: {r['avg_bitrate_kbps']} kbps" for r in summary["renditions"]
            )
            print(f"renditions: {sizes}")

        if args.batch > 0:
            batch(exe, tmp, env, args)
        if args.explore:
            explore(exe, src, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def batch(exe: str, tmp: Path, env: dict[str, str], args) -> None:
    """``encoder batch`` of N distinct tracks per --jobs value: tracks/min, CPU s per track."""
    folder = tmp / "batch"
    folder.mkdir()
    first = folder / "track-00.flac"
    subprocess.run(
        [exe, "-hide_banner", "-loglevel", "error", "-y", *music_source(args.batch_seconds)]
        + ["-sample_fmt", "s16", "-c:a", "flac", str(first)],
        check=True,
    )
    for i in range(1, args.batch):  # distinct sources (another title: another sha256)
        copy = folder / f"track-{i:02d}.flac"
        shutil.copy(first, copy)
        from mutagen.flac import FLAC

        tagged = FLAC(copy)
        tagged["title"] = f"bench {i}"
        tagged.save()
    print(f"\nbatch: {args.batch} tracks of {args.batch_seconds:.0f} s, fresh store each")
    base = None
    for jobs in [int(j) for j in args.jobs.split(",") if j.strip()]:
        for arrangement in ("fanout", "onepass"):
            store = (tmp / f"batch-{arrangement}-{jobs}").as_uri()
            argv = [sys.executable, "-m", "encoder.cli", "batch", str(folder), "--store", store]
            argv += ["--jobs", str(jobs)]
            run_env = {**env, "ENCODER_ARRANGEMENT": arrangement}
            wall, cpu, _ = timed(argv, env=run_env, text=True)
            per_min = args.batch / wall * 60
            base = base or per_min
            print(
                f"  {arrangement:8} --jobs {jobs}:  {per_min:6.1f} tracks/min "
                f"({per_min / base:.2f}x the first row)   wall {wall:6.1f} s   "
                f"cpu {cpu / args.batch:5.2f} s/track   "
                f"{args.batch * args.batch_seconds / wall:5.1f}x real time"
            )


def explore(exe: str, src: Path, tmp: Path, args) -> None:
    """Can libvorbis be fed bigger frames (or a different ffmpeg) for the same files?"""
    variants: list[tuple[str, str, list[str]]] = [
        ("bundled, as is", exe, []),
        ("bundled, -frame_size 4096", exe, ["-frame_size", "4096"]),
        ("bundled, asetnsamples=4096:p=0", exe, ["-af", "asetnsamples=n=4096:p=0"]),
    ]
    if (
        args.compare
        and shutil.which(args.compare)
        and Path(args.compare).resolve() != Path(exe).resolve()
    ):
        variants.append((f"{args.compare} {ffmpeg_version(args.compare)}", args.compare, []))
    print("\nframe-size investigation (bare 3-output pass, median of runs)")
    reference: dict[str, str] | None = None
    reference_dir = tmp
    for label, binary, extra in variants:
        out = tmp / ("explore-" + hashlib.sha256(label.encode()).hexdigest()[:8])
        out.mkdir()
        samples = [timed(bare_argv(binary, src, out, extra))[:2] for _ in range(args.runs)]
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        files = digests(out)
        if reference is None:
            reference, reference_dir = files, out
            same = "reference"
        elif files == reference:
            same = "byte-identical files"
        else:
            same = "; ".join(_difference(reference_dir / n, out / n) for n in sorted(files))
        print(f"  {label:42} wall {wall:6.2f} s  cpu {cpu:6.2f} s  {same}")


if __name__ == "__main__":
    main()
