"""The CLI contract other parts rely on: one JSON object on stdout, one-line errors, exit codes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.encoder.cli_runner import run_encoder as encoder

pytestmark = pytest.mark.slow  # the CLI as a process, ffmpeg

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"track_id", "version", "status", "renditions", "loudness", "duration_s"}


def test_ingest_prints_one_json_object_then_already_published(media, tmp_path, work_dir):
    store = (tmp_path / "origin").as_uri()
    done = encoder(
        "ingest", media["tagged.flac"], "--track-id", "t1", "--store", store,
        "--title", "T", "--artist", "A", "--album", "B", "--year", "2001", "--genre", "G",
        ENCODER_WORK_DIR=work_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    summary = json.loads(done.stdout)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["status"] == "published" and summary["track_id"] == "t1"
    assert [r["bitrate_kbps"] for r in summary["renditions"]] == [96, 160, 320]
    for r in summary["renditions"]:
        assert set(r) == {"bitrate_kbps", "bytes", "avg_bitrate_kbps", "key"}
        assert r["key"] == f"tracks/t1/{summary['version']}/{r['bitrate_kbps']}.ogg"
    assert summary["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert set(summary["loudness"]) == {"integrated_lufs", "true_peak_dbtp", "lra", "track_gain_db"}
    assert "transcoding" in done.stderr  # progress goes to stderr

    manifest = json.loads(
        (tmp_path / "origin" / f"tracks/t1/{summary['version']}/manifest.json").read_text()
    )
    assert manifest["tags"] == {
        "title": "T", "artist": "A", "album": "B", "date": "2001", "genre": "G",
    }  # fmt: skip

    again = encoder("ingest", media["tagged.flac"], "--track-id", "t1", "--store", store,
                    "--title", "T", "--artist", "A", "--album", "B", "--year", "2001",
                    "--genre", "G", ENCODER_WORK_DIR=work_dir)  # fmt: skip
    assert again.returncode == 0
    repeat = json.loads(again.stdout)
    assert repeat["status"] == "already_published" and repeat["version"] == summary["version"]
    assert repeat["renditions"] == summary["renditions"]
    assert summary["store"] == repeat["store"] == store
    assert f"in {store}" in done.stderr


def test_ingest_refuses_another_source_for_an_existing_track_unless_replace(
    media, tmp_path, work_dir
):
    store = (tmp_path / "origin").as_uri()
    env = {"ENCODER_WORK_DIR": work_dir}
    first = encoder("ingest", media["short.wav"], "--track-id", "t1", "--store", store, **env)
    assert first.returncode == 0, first.stderr
    version = json.loads(first.stdout)["version"]
    latest = tmp_path / "origin" / "tracks" / "t1" / "latest.json"
    before = latest.read_bytes()

    refused = encoder("ingest", media["mono.flac"], "--track-id", "t1", "--store", store,
                      "--quiet", **env)  # fmt: skip
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoder: error: track 't1' ")
    assert version in lines[0] and str(media["mono.flac"]) in lines[0]
    assert "--replace" in lines[0] and refused.stdout == ""
    assert latest.read_bytes() == before

    replaced = encoder("ingest", media["mono.flac"], "--track-id", "t1", "--store", store,
                       "--replace", **env)  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(latest.read_text())["version"] == json.loads(replaced.stdout)["version"]


def test_store_defaults_to_the_environment_then_data_origin(media, tmp_path, work_dir):
    via_env = tmp_path / "env-store"
    done = encoder(
        "ingest", media["short.wav"], "--track-id", "s1", "--quiet",
        ENCODER_STORE=via_env.as_uri(), ENCODER_WORK_DIR=work_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet
    assert (via_env / "tracks/s1/latest.json").is_file()

    env = {k: v for k, v in os.environ.items() if k != "ENCODER_STORE"}
    default = subprocess.run(
        [
            sys.executable,
            "-m",
            "encoder.cli",
            "ingest",
            str(media["short.wav"]),
            "--track-id",
            "s1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "ENCODER_WORK_DIR": str(work_dir)},
        timeout=120,
    )
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "data/origin/tracks/s1/latest.json").is_file()
    # the default store is relative to the current directory: the summary names it resolved
    resolved = (tmp_path / "data/origin").resolve().as_uri()
    assert json.loads(default.stdout)["store"] == resolved
    assert f"in {resolved}" in default.stderr


@pytest.mark.parametrize(
    ("args", "code", "reason"),
    [
        (["ingest", "{empty.flac}", "--track-id", "t1"], 1, "empty file"),
        (["ingest", "{cover.png}", "--track-id", "t1"], 1, "not audio"),
        (["ingest", "{truncated.mp3}", "--track-id", "t1"], 1, "truncated or corrupt"),
        (["ingest", "{music.flac}", "--track-id", "../x"], 2, "invalid track id"),
        (["ingest", "{music.flac}"], 2, "--track-id"),
        (["ingest", "{music.flac}", "--track-id", "t1", "--profile", "x"], 2, "invalid choice"),
        (["ingest", "{music.flac}", "--track-id", "t1", "--store", "ftp://x"], 2, "unsupported"),
        (["ingest", "{music.flac}", "--track-id", "t1", "--notify", "x"], 2, "not an http"),
        (["frobnicate"], 2, "invalid choice"),
        (["batch", "{music.flac}.nope"], 2, "no such folder"),
        (["batch", "/tmp", "--shard", "2/2"], 2, "invalid --shard"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_status(media, tmp_path, args, code, reason):
    argv = [re.sub(r"\{([^}]+)\}", lambda m: str(media[m[1]]), a) for a in args]
    if argv[0] == "ingest" and "--store" not in argv:
        argv += ["--store", (tmp_path / "origin").as_uri()]
    quiet = ["--quiet"] if argv[0] == "ingest" else []
    done = encoder(*argv, *quiet, ENCODER_WORK_DIR=tmp_path)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoder: error: ")
    assert reason in lines[0]
    assert done.stdout == ""
    assert not (tmp_path / "origin" / "tracks").exists()


def test_a_bad_setting_fails_at_start_up(media, tmp_path):
    done = encoder(
        "ingest", media["music.flac"], "--track-id", "t1", "--store", tmp_path.as_uri(),
        ENCODER_MAX_DURATION_S="forever",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("encoder: error: ENCODER_MAX_DURATION_S: ")
    assert len(done.stderr.splitlines()) == 1
