import os
import socket
import subprocess
import sys
import time

import pytest

from encoder.errors import UsageError
from encoder.settings import DEFAULT_STORE, load_settings
from encoder.workdir import WorkDir, sweep_stale
from tests.support.settings_cli import assert_refused, run_with_settings


def test_defaults(monkeypatch):
    for name in list(os.environ):
        if name.startswith("ENCODER_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.store == DEFAULT_STORE == "file://./data/origin"
    assert settings.profile == "quality"
    assert settings.max_duration_s == 10800
    assert os.path.basename(settings.ffmpeg_exe).startswith("ffmpeg")  # imageio-ffmpeg's
    assert settings.batch_jobs >= 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENCODER_FFMPEG", "/no/such/ffmpeg", "ENCODER_FFMPEG"),
        ("ENCODER_PROFILE", "cbr", "ENCODER_PROFILE"),
        ("ENCODER_MAX_DURATION_S", "-1", "ENCODER_MAX_DURATION_S"),
        ("ENCODER_NOTIFY_URL", "ftp://x", "ENCODER_NOTIFY_URL"),
        ("ENCODER_JOBS", "0", "ENCODER_JOBS"),
    ],
)
def test_bad_settings_fail_loudly_with_the_variable_name(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=message):
        load_settings()


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["ingest", "x.flac", "--track-id", "t1"], {"ENCODER_MAX_DURATION_S": "forever"},
         ["ENCODER_MAX_DURATION_S"]),
        (["ingest", "x.flac", "--track-id", "t1"], {"ENCODER_ARRANGEMENT": "twopass"},
         ["ENCODER_ARRANGEMENT"]),
        (["ingest", "x.flac", "--track-id", "t1"], {"ENCODER_FFMPEG": "/no/such/ffmpeg"},
         ["ENCODER_FFMPEG"]),
        (["ingest", "x.flac", "--track-id", "t1"],
         {"ENCODER_NOTIFY_TIMEOUT_S": "0", "ENCODER_STORE": "ftp://x/y"},
         ["ENCODER_NOTIFY_TIMEOUT_S", "ENCODER_STORE"]),
        (["ingest", "x.flac", "--track-id", "t1", "--notify", "x"], {}, ["--notify"]),
        (["ingest", "x.flac", "--track-id", "t1", "--store", "ftp://x/y"], {}, ["--store"]),
        (["batch", ".", "--jobs", "0"], {}, ["--jobs"]),
        (["batch", "."], {"ENCODER_JOBS": "65"}, ["ENCODER_JOBS"]),
        (["ls"], {"ENCODER_MAX_COVER_BYTES": "-1"}, ["ENCODER_MAX_COVER_BYTES"]),
        (["verify"], {"ENCODER_PROFILE": "cbr"}, ["ENCODER_PROFILE"]),
    ],
)  # fmt: skip
def test_every_command_refuses_a_bad_setting_in_one_line_naming_it(tmp_path, argv, env, names):
    result = run_with_settings(["encoder", *argv], env, cwd=tmp_path)
    assert_refused(result, "encoder: error: ", *names)


def test_ffmpeg_can_be_overridden(monkeypatch, ffmpeg_exe):
    monkeypatch.setenv("ENCODER_FFMPEG", ffmpeg_exe)
    assert load_settings().ffmpeg_exe == ffmpeg_exe


def test_workdir_is_removed_on_error(tmp_path):
    with pytest.raises(RuntimeError), WorkDir(tmp_path) as path:
        (path / "96.ogg").write_bytes(b"x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_directories_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    for name, pid in (("ingest-dead", dead.stdout.strip()), ("ingest-live", os.getpid())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "owner").write_text(f"{host} {pid}\n")
    (tmp_path / "ingest-other-host").mkdir()
    (tmp_path / "ingest-other-host" / "owner").write_text("elsewhere 1\n")
    (tmp_path / "unrelated").mkdir()
    removed = sweep_stale(tmp_path)
    assert [p.name for p in removed] == ["ingest-dead"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ingest-live",
        "ingest-other-host",
        "unrelated",
    ]


def test_sweep_spares_a_young_directory_whose_owner_file_is_still_empty(tmp_path):
    # Another process's ingest between mkdtemp and writing its owner file (the batch --jobs
    # race that once removed a live work directory): not junk until it is old.
    young = tmp_path / "ingest-young"
    young.mkdir()
    (young / "owner").write_text("")
    old = tmp_path / "ingest-old"
    old.mkdir()
    (old / "owner").write_text("")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert [p.name for p in sweep_stale(tmp_path)] == ["ingest-old"]
    assert young.is_dir()


def test_owner_file_is_complete_whenever_it_exists(tmp_path):
    with WorkDir(tmp_path) as path:
        assert sorted(p.name for p in path.iterdir()) == ["owner"]
        host, pid = (path / "owner").read_text().split()
        assert (host, int(pid)) == (socket.gethostname(), os.getpid())


def test_bundled_ffmpeg_is_the_wheels_binary_without_running_it():
    import imageio_ffmpeg

    from encoder.settings import bundled_ffmpeg, load_settings

    assert bundled_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()
    other = bundled_ffmpeg()  # any executable path given explicitly is used as it is
    assert load_settings(ffmpeg=other).ffmpeg_exe == other


def test_fanout_is_the_default_and_onepass_is_selectable(monkeypatch):
    monkeypatch.delenv("ENCODER_ARRANGEMENT", raising=False)
    assert load_settings().arrangement == "fanout"
    assert load_settings().engine == "oggenc"
    monkeypatch.setenv("ENCODER_ARRANGEMENT", "onepass")
    assert load_settings().engine == "ffmpeg"
    monkeypatch.setenv("ENCODER_ARRANGEMENT", "twopass")
    with pytest.raises(UsageError, match="ENCODER_ARRANGEMENT"):
        load_settings()


def test_a_missing_oggenc_is_one_line_naming_the_fixes(monkeypatch):
    monkeypatch.setenv("ENCODER_OGGENC", "/no/such/oggenc")
    with pytest.raises(UsageError) as info:
        load_settings().oggenc_exe  # noqa: B018
    message = str(info.value)
    assert "\n" not in message
    assert "vorbis-tools" in message and "ENCODER_ARRANGEMENT=onepass" in message


@pytest.mark.slow  # runs the CLI as a process
def test_ingest_without_oggenc_fails_before_any_work(media, tmp_path):
    from tests.encoder.cli_runner import run_encoder

    store = tmp_path / "origin"
    done = run_encoder(
        "ingest", media["music.flac"], "--track-id", "t1", "--store", store.as_uri(),
        ENCODER_OGGENC="/no/such/oggenc", ENCODER_ARRANGEMENT="fanout",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoder: error: oggenc not found")
    assert not store.exists() or not any(store.rglob("*.ogg"))
