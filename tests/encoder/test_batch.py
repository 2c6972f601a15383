import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from encoder.batch import in_shard, parse_shard, plan_csv, plan_directory, slugify, summary_table
from encoder.errors import UsageError
from origin.keys import validate_track_id
from origin.manifest import Manifest
from origin.store import open_store
from tests.encoder.cli_runner import run_encoder

pytestmark = pytest.mark.slow  # ffmpeg encodes, batch processes

ROOT = Path(__file__).resolve().parents[2]


def test_slug_is_stable_valid_and_bounded():
    assert slugify("Albums/Blue Train/01 Blue Train.flac") == "albums-blue-train-01-blue-train"
    assert slugify("Émile & co/Track (live).mp3") == "mile-co-track-live"
    assert slugify("....flac") == "track"
    long = slugify("x" * 300 + ".wav")
    assert len(long) == 64 and validate_track_id(long)
    assert slugify("x" * 300 + ".wav") == long
    assert slugify("y" + "x" * 300 + ".wav") != long


def test_shards_partition_the_catalogue():
    ids = [f"track-{i}" for i in range(200)]
    shards = [{t for t in ids if in_shard(t, i, 3)} for i in range(3)]
    assert set().union(*shards) == set(ids)
    assert sum(len(s) for s in shards) == len(ids)
    assert all(len(s) > 30 for s in shards)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_csv_plan_with_header_tags_and_relative_paths(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text(
        "source,track_id,title,year\n"
        "# a comment\n"
        "a.flac,song-a,Song A,1999\n"
        "/abs/b.mp3,song-b,,\n"
        "c.wav,bad id!,C,\n"
    )
    items = plan_csv(csv)
    assert [i.track_id for i in items] == ["song-a", "song-b", "bad id!"]
    assert items[0].source == tmp_path / "a.flac"
    assert items[0].tags == {"title": "Song A", "date": "1999"}
    assert items[1].source == Path("/abs/b.mp3") and items[1].tags == {}
    assert items[2].error and "invalid track id" in items[2].error


def test_csv_without_header_uses_positional_tags(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("a.flac,a,Title,Artist,Album\n")
    assert plan_csv(csv)[0].tags == {"title": "Title", "artist": "Artist", "album": "Album"}
    csv.write_text("source,track_id,colour\na.flac,a,red\n")
    with pytest.raises(UsageError, match="unknown CSV column"):
        plan_csv(csv)


def test_directory_plan_skips_hidden_and_sidecars_and_flags_collisions(tmp_path):
    for name in ("a/song.flac", "a/song.mp3", "b/other.wav", ".hidden/x.flac", "b/.part.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b" / "cover.jpg").write_bytes(b"x")
    items = {i.name: i for i in plan_directory(tmp_path)}
    assert sorted(items) == ["a/song.flac", "a/song.mp3", "b/cover.jpg", "b/other.wav"]
    assert items["b/cover.jpg"].skipped
    assert items["b/other.wav"].track_id == "b-other" and items["b/other.wav"].error is None
    assert "derived from 2 files" in items["a/song.flac"].error
    assert "derived from 2 files" in items["a/song.mp3"].error


GOOD = [
    "music.wav", "music.flac", "tagged.flac", "mono.flac", "surround51.flac", "rate8k.wav",
    "rate48k.flac", "rate96k.flac", "mp3_128.mp3", "aac.m4a", "video.mp4", "vorbis.ogg",
    "two_streams.mka", "silence.flac", "short.wav",
]  # fmt: skip
BAD = ["empty.flac", "text.mp3", "truncated.mp3", "truncated.flac", "video_only.mp4"]


def _unique(name: str) -> str:
    # music.wav and music.flac would both slug to "music" (a collision, reported as such)
    stem, ext = name.rsplit(".", 1)
    return f"{stem}-{ext}.{ext}"


def test_batch_over_a_folder_of_20_mixed_files(media, tmp_path, work_dir):
    folder = tmp_path / "upload"
    folder.mkdir()
    for name in GOOD + BAD:
        shutil.copy(media[name], folder / _unique(name))
    shutil.copy(media["cover.png"], folder / "cover.png")  # a sidecar: skipped, not failed
    store_url = (tmp_path / "origin").as_uri()
    env = {"ENCODER_WORK_DIR": str(work_dir)}

    done = run_encoder(
        "batch", str(folder), "--store", store_url, "--jobs", "2", timeout=300, **env
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == "21 items: 15 published, 0 already published, 5 failed, 1 skipped"
    assert lines[-1] == f"store: {store_url}"
    status = {line.split()[3]: line.split()[0] for line in lines[1:-2]}
    assert {n for n, s in status.items() if s == "published"} == {_unique(n) for n in GOOD}
    assert {n for n, s in status.items() if s == "failed"} == {_unique(n) for n in BAD}
    assert status["cover.png"] == "skipped"
    assert "truncated or corrupt" in next(ln for ln in lines if "truncated-flac" in ln)

    store = open_store(store_url)
    manifest = Manifest.from_json(
        store.get_bytes(
            next(k for k in store.list("tracks/upload-tagged-flac/") if k.endswith("manifest.json"))
        )
    )
    assert manifest.tags["title"] == "Blue Sine"
    assert {k.split("/")[1] for k in store.list()} == {
        slugify(f"upload/{_unique(n)}") for n in GOOD
    }
    assert list(work_dir.iterdir()) == []

    again = run_encoder("batch", str(folder), "--store", store_url, "--json", timeout=300, **env)
    assert again.returncode == 1
    summary = json.loads(again.stdout)
    assert summary["counts"] == {"published": 0, "already_published": 15, "failed": 5, "skipped": 1}
    assert summary["store"] == store_url


def test_batch_shard_and_csv(media, tmp_path, work_dir):
    csv = tmp_path / "catalogue.csv"
    rows = [f"{media[n]},id-{i},Title {i}" for i, n in enumerate(["mono.flac", "short.wav"])]
    csv.write_text("source,track_id,title\n" + "\n".join(rows) + "\n")
    store_url = (tmp_path / "origin").as_uri()
    env = {"ENCODER_WORK_DIR": str(work_dir)}
    published = set()
    for shard in ("0/2", "1/2"):
        done = run_encoder(
            "batch", str(csv), "--store", store_url, "--shard", shard, "--json", timeout=300, **env
        )
        assert done.returncode == 0, done.stderr
        items = json.loads(done.stdout)["items"]
        assert all(in_shard(i["track_id"], int(shard[0]), 2) for i in items)
        published |= {i["track_id"] for i in items if i["status"] == "published"}
    assert published == {"id-0", "id-1"}
    store = open_store(store_url)
    key = next(k for k in store.list("tracks/id-1/") if k.endswith("manifest.json"))
    assert Manifest.from_json(store.get_bytes(key)).tags == {"title": "Title 1"}


def test_summary_table_aligns_columns():
    from encoder.batch import BatchItem, BatchOutcome

    table = summary_table(
        [
            BatchOutcome(BatchItem(Path("a"), "a", "a.flac"), "published", "0" * 16),
            BatchOutcome(BatchItem(Path("b"), "bb", "bb.mp3"), "failed", detail="empty file"),
        ]
    )
    header, first, second, total = table.splitlines()
    assert header.index("TRACK_ID") == first.index("a ") == second.index("bb")
    assert second.endswith("empty file")
    assert total == "2 items: 1 published, 0 already published, 1 failed, 0 skipped"


def test_sigterm_stops_a_batch_between_atomic_publications(media, tmp_path, work_dir):
    import signal

    folder = tmp_path / "upload"
    folder.mkdir()
    copies = 3  # plenty of work left when the signal lands, even on a loaded machine
    for name in GOOD:
        for k in range(copies):
            shutil.copy(media[name], folder / f"{k}-{_unique(name)}")
    store_url = (tmp_path / "origin").as_uri()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENCODER_WORK_DIR": str(work_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "encoder.cli", "batch", str(folder), "--store", store_url]
        + ["--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stderr.readline()  # the progress bar's first line: one item is done
        assert f"1/{copies * len(GOOD)}" in first
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "encoder: error: terminated"
    store = open_store(store_url)
    keys = store.list()
    manifests = [k for k in keys if k.endswith("manifest.json")]
    assert 1 <= len(manifests) < copies * len(GOOD), (len(manifests), err[-2000:])
    for key in manifests:  # every visible version is whole
        manifest = Manifest.from_json(store.get_bytes(key))
        assert all(store.exists(r.key) for r in manifest.renditions)
    assert list(work_dir.iterdir()) == []


def test_only_audio_files_derive_ids_so_sidecars_sharing_a_stem_are_ignored(tmp_path):
    album = tmp_path / "Night Drive"
    album.mkdir()
    sidecars = ["song.lrc", "song.txt", "song.jpg", "song.cue", "song.nfo", "song.log", "song"]
    for name in ["song.ogg", *sidecars]:
        (album / name).write_bytes(b"x")
    items = {i.name: i for i in plan_directory(album)}
    assert items["song.ogg"].error is None and items["song.ogg"].skipped is None
    assert items["song.ogg"].track_id == "night-drive-song"
    for name in sidecars:
        assert items[name].skipped and "not an audio file" in items[name].skipped
        assert items[name].error is None


def test_a_folder_of_audio_with_sidecars_publishes_the_audio(media, tmp_path, work_dir):
    album = tmp_path / "Night Drive"
    album.mkdir()
    shutil.copy(media["short.wav"], album / "song.wav")
    for name in ("song.lrc", "song.txt", "song.jpg", "song.cue"):
        (album / name).write_text("[00:00.00] la la la\n")
    store_url = (tmp_path / "origin").as_uri()
    done = run_encoder("batch", album, "--store", store_url, "--json", ENCODER_WORK_DIR=work_dir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"published": 1, "already_published": 0, "failed": 0, "skipped": 4}
    (published,) = [i for i in summary["items"] if i["status"] == "published"]
    assert published["track_id"] == "night-drive-song"


def test_two_albums_holding_the_same_file_name_derive_different_ids(tmp_path):
    for album in ("Album One", "Album Two"):
        (tmp_path / album).mkdir()
        (tmp_path / album / "01 Intro.flac").write_bytes(b"x")
    together = [i.track_id for i in plan_directory(tmp_path)]
    apart = [plan_directory(tmp_path / a)[0].track_id for a in ("Album One", "Album Two")]
    assert together == apart == ["album-one-01-intro", "album-two-01-intro"]
    long_name = tmp_path / ("A" * 80)
    long_name.mkdir()
    (long_name / ("B" * 80 + ".flac")).write_bytes(b"x")
    (derived,) = [i.track_id for i in plan_directory(long_name)]
    assert len(derived) <= 64 and validate_track_id(derived)
    assert derived == plan_directory(long_name)[0].track_id


def test_batch_refuses_to_repoint_a_track_at_another_source_without_replace(
    media, tmp_path, work_dir
):
    # the same album folder name in two upload areas: both derive "intro-01-intro"
    first, second = tmp_path / "a" / "Intro", tmp_path / "b" / "Intro"
    for folder, source in ((first, "short.wav"), (second, "mono.flac")):
        folder.mkdir(parents=True)
        shutil.copy(media[source], folder / "01 Intro.flac")
    store_url = (tmp_path / "origin").as_uri()
    env = {"ENCODER_WORK_DIR": work_dir}
    done = run_encoder("batch", first, "--store", store_url, "--json", **env)
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)["items"][0]["version"]
    latest = tmp_path / "origin" / "tracks" / "intro-01-intro" / "latest.json"
    before = latest.read_bytes()

    refused = run_encoder("batch", second, "--store", store_url, **env)
    assert refused.returncode == 1, refused.stderr
    lines = refused.stdout.strip().splitlines()
    assert lines[-2] == "1 items: 0 published, 0 already published, 1 failed, 0 skipped"
    row = next(line for line in lines if line.startswith("failed"))
    assert "intro-01-intro" in row and version in row and "--replace" in row
    assert latest.read_bytes() == before
    assert len(list((tmp_path / "origin" / "tracks" / "intro-01-intro").iterdir())) == 2

    replaced = run_encoder("batch", second, "--store", store_url, "--replace", "--json", **env)
    assert replaced.returncode == 0, replaced.stderr
    new_version = json.loads(replaced.stdout)["items"][0]["version"]
    assert new_version != version and json.loads(latest.read_text())["version"] == new_version
