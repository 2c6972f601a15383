"""Hostile input to the encoder: file names ffmpeg or argparse would read as something else.

ffmpeg takes ``concat:x``, ``file:x``, ``http:x``, ``pipe:x``, ``subfile,...:x`` for
protocols. A file NAMED ``concat:good.flac`` used to be probed as ``good.flac``
(another file) while the transcode read the real one: the duration limit was
bypassed and the other file's tags and format were published. Hashing, probing and
transcoding must all open the one file the user named.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from encoder import InputError, ingest
from encoder.settings import load_settings
from origin.local import LocalStore
from tests.encoder.cli_runner import run_encoder

REAL_SECONDS = 4.0
DECOY_SECONDS = 1.0
PROTOCOL_NAMES = [
    "concat:good.flac",
    "concat:good.flac|good.flac",
    "file:good.flac",
    "http:good.flac",
    "pipe:good.flac",
    "subfile,,start,0,end,0,,:good.flac",
]


def _ffmpeg(exe: str, *args: str) -> None:
    subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """The real master (4 s Matroska/FLAC, untagged, 44.1 kHz stereo; mutagen cannot read
    Matroska, so only ffmpeg knows its length) and the decoy ``good.flac`` a protocol
    name would open instead (1 s, 48 kHz mono, tagged)."""
    exe = load_settings().ffmpeg_exe
    folder = tmp_path_factory.mktemp("hostile-sources")
    real, decoy = folder / "real.mka", folder / "good.flac"
    tone = "sine=f=330:r=44100:d={}"
    _ffmpeg(exe, "-f", "lavfi", "-i", tone.format(REAL_SECONDS), "-ac", "2", "-c:a", "flac",
            str(real))  # fmt: skip
    _ffmpeg(exe, "-f", "lavfi", "-i", "sine=f=880:r=48000:d=1", "-ac", "1", "-c:a", "flac",
            "-metadata", "title=DECOY", str(decoy))  # fmt: skip
    return {"real": real, "decoy": decoy}


@pytest.fixture
def hostile_dir(tmp_path, sources, monkeypatch) -> Path:
    """A working directory holding the decoy; each test names the real file after a protocol."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    shutil.copy(sources["decoy"], folder / "good.flac")
    monkeypatch.chdir(folder)
    return folder


def _place_real(folder: Path, sources: dict[str, Path], name: str) -> Path:
    target = folder / name
    shutil.copy(sources["real"], target)
    return target


@pytest.mark.slow  # ffmpeg encodes, the CLI as a process
@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_a_protocol_looking_name_publishes_the_real_file(hostile_dir, sources, tmp_path, name):
    _place_real(hostile_dir, sources, name)
    store = LocalStore(tmp_path / "origin")
    settings = load_settings(work_dir=tmp_path / "work")
    result = ingest(Path(name), "t1", store, settings=settings)
    source = result.manifest.source
    assert source.sha256 == hashlib.sha256(sources["real"].read_bytes()).hexdigest()
    assert source.bytes == sources["real"].stat().st_size
    assert source.container == "matroska"
    assert (source.sample_rate, source.channels) == (44100, 2)
    assert source.duration_s == pytest.approx(REAL_SECONDS, abs=0.1)
    assert "DECOY" not in result.manifest.tags.values()


@pytest.mark.slow  # ffmpeg encodes, the CLI as a process
@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_the_duration_limit_holds_whatever_the_name(hostile_dir, sources, tmp_path, name):
    _place_real(hostile_dir, sources, name)
    store = LocalStore(tmp_path / "origin")
    settings = load_settings(work_dir=tmp_path / "work", max_duration_s=2.5)
    with pytest.raises(InputError, match="the limit is"):
        ingest(Path(name), "t1", store, settings=settings)
    assert store.list() == []


@pytest.mark.slow  # ffmpeg encodes, the CLI as a process
def test_the_cli_refuses_a_protocol_named_file_over_the_limit_in_one_line(
    hostile_dir, sources, tmp_path
):
    _place_real(hostile_dir, sources, "concat:good.flac")
    store = tmp_path / "origin"
    done = run_encoder(
        "ingest", "concat:good.flac", "--track-id", "t1", "--store", store.as_uri(), "--quiet",
        cwd=hostile_dir, ENCODER_MAX_DURATION_S="2.5", ENCODER_WORK_DIR=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoder: error: ")
    assert "the limit is" in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (store / "tracks").exists()


@pytest.mark.slow  # ffmpeg encodes, the CLI as a process
def test_a_name_beginning_with_a_dash_gets_a_hint_and_works_after_double_dash(
    hostile_dir, sources, tmp_path
):
    shutil.copy(sources["real"], hostile_dir / "-song.mka")
    store = tmp_path / "origin"
    common = ["--store", store.as_uri(), "--quiet"]
    env = {"ENCODER_WORK_DIR": str(tmp_path)}

    refused = run_encoder("ingest", "-song.mka", "--track-id", "t1", *common, cwd=hostile_dir,
                          **env)  # fmt: skip
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoder: error: ")
    assert "./-song.mka" in lines[0] and " -- " in lines[0]
    assert not (store / "tracks").exists()

    after_dashes = run_encoder("ingest", "--track-id", "t1", *common, "--", "-song.mka",
                               cwd=hostile_dir, **env)  # fmt: skip
    assert after_dashes.returncode == 0, after_dashes.stderr
    summary = json.loads(after_dashes.stdout)
    assert summary["status"] == "published" and summary["duration_s"] == pytest.approx(4, abs=0.1)

    dotted = run_encoder("ingest", "./-song.mka", "--track-id", "t1", *common, cwd=hostile_dir,
                         **env)  # fmt: skip
    assert dotted.returncode == 0, dotted.stderr
    assert json.loads(dotted.stdout)["status"] == "already_published"


@pytest.mark.slow  # ffmpeg encodes, the CLI as a process
def test_batch_of_a_folder_beginning_with_a_dash(hostile_dir, sources, tmp_path):
    (hostile_dir / "-album").mkdir()
    shutil.copy(sources["real"], hostile_dir / "-album" / "concat:good.mka")
    store = tmp_path / "origin"
    refused = run_encoder("batch", "-album", "--store", store.as_uri(), cwd=hostile_dir)
    assert refused.returncode == 2
    assert "./-album" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    done = run_encoder(
        "batch", "--store", store.as_uri(), "--json", "--", "-album", cwd=hostile_dir,
        ENCODER_WORK_DIR=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)["items"]
    assert item["status"] == "published" and item["track_id"] == "album-concat-good"
    manifest = json.loads(
        (store / "tracks" / "album-concat-good" / item["version"] / "manifest.json").read_text()
    )
    assert manifest["source"]["duration_s"] == pytest.approx(REAL_SECONDS, abs=0.1)
