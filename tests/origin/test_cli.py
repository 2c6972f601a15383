"""The `origin` command line: ls, stat, cat, put, pull-token, help and one-line errors."""

from __future__ import annotations

import json
import subprocess

import pytest

from origin.cli import main
from origin.keys import latest_key, rendition_key
from origin.local import LocalStore
from tests.support.servers import VENV_BIN
from tests.support.settings_cli import assert_refused, run_with_settings

KEY = rendition_key("song", "0123456789abcdef", 96)


@pytest.fixture
def store(tmp_path, monkeypatch):
    for name in ("STORE", "PULL_TOKEN", "PULL_TOKEN_FILE"):
        monkeypatch.delenv(f"ORIGIN_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    store = LocalStore(tmp_path / "store")
    monkeypatch.setenv("ORIGIN_STORE", store.url)
    return store


def test_ls_lists_sorted_keys_under_a_prefix(store, capsys):
    store.put_bytes(KEY, b"a")
    store.put_bytes(latest_key("song"), b"{}")
    store.put_bytes(latest_key("other"), b"{}")
    assert main(["ls", "tracks/song/"]) == 0
    assert capsys.readouterr().out.splitlines() == [KEY, latest_key("song")]
    assert main(["ls"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_store_option_overrides_the_environment(store, tmp_path, capsys):
    other = LocalStore(tmp_path / "other")
    other.put_bytes(latest_key("elsewhere"), b"{}")
    assert main(["ls", "--store", other.url]) == 0
    assert capsys.readouterr().out.split() == [latest_key("elsewhere")]


def test_cat_writes_the_bytes(store, capfdbinary):
    store.put_bytes(KEY, bytes(range(256)) * 2000)
    assert main(["cat", KEY]) == 0
    assert capfdbinary.readouterr().out == bytes(range(256)) * 2000


def test_put_then_stat(store, tmp_path, capsys):
    source = tmp_path / "a.ogg"
    source.write_bytes(b"ogg data")
    assert main(["put", KEY, str(source)]) == 0
    assert KEY in capsys.readouterr().out
    assert store.get_bytes(KEY) == b"ogg data"
    assert main(["stat", KEY]) == 0
    fields = json.loads(capsys.readouterr().out)
    assert fields["size"] == 8 and fields["content_type"] == "audio/ogg"


def test_pull_token_prints_the_file_token_and_creates_it(store, tmp_path, capsys):
    assert main(["pull-token"]) == 0
    token = capsys.readouterr().out.strip()
    assert (tmp_path / "data" / "secrets" / "pull-token").read_text().strip() == token
    assert main(["pull-token"]) == 0
    assert capsys.readouterr().out.strip() == token


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["cat", "tracks/../../etc/passwd"], 2, "invalid object key"),
        (["stat", "/etc/passwd"], 2, "invalid object key"),
        (["ls", "tracks/so"], 2, "invalid prefix"),
        (["cat", latest_key("ghost")], 1, "No such key"),
        (["put", KEY, "/nonexistent/file.ogg"], 2, "no such file"),
        (["ls", "--store", "ftp://example.com/x"], 2, "unsupported store URL"),
        (["ls", "--store", "s3://bucket/p?nonsense=1"], 2, "unknown S3 store option"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(store, capsys, argv, status, message):
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("origin: error: ") and message in err
    assert err.count("\n") == 1  # one line, no traceback


def test_help_and_usage_errors_from_the_installed_script():
    result = subprocess.run(
        [str(VENV_BIN / "origin"), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "pull-token", "ls", "cat"):
        assert command in result.stdout
    result = subprocess.run([str(VENV_BIN / "origin")], capture_output=True, text=True)
    assert result.returncode == 2
    result = subprocess.run(
        [str(VENV_BIN / "origin"), "serve", "--port", "not-a-port"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid int value" in result.stderr


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["serve"], {"ORIGIN_MAX_HEADER_BYTES": "1"}, ["ORIGIN_MAX_HEADER_BYTES"]),
        (["serve"], {"ORIGIN_PORT": "abc"}, ["ORIGIN_PORT"]),
        (["serve"], {"ORIGIN_STORE": "ftp://x/y"}, ["ORIGIN_STORE"]),
        (["serve"], {"ORIGIN_PULL_TOKEN": "short"}, ["ORIGIN_PULL_TOKEN"]),
        (["serve"], {"ORIGIN_HEADER_TIMEOUT_S": "0"}, ["ORIGIN_HEADER_TIMEOUT_S"]),
        (["serve"], {"ORIGIN_LOG_LEVEL": "chatty", "ORIGIN_PORT": "0"},
         ["ORIGIN_LOG_LEVEL", "ORIGIN_PORT"]),
        (["serve", "--port", "70000"], {}, ["--port"]),
        (["serve", "--store", "ftp://x/y"], {"ORIGIN_STORE": "file://./data/origin"}, ["--store"]),
        (["ls"], {"ORIGIN_MAX_CONNECTIONS": "many"}, ["ORIGIN_MAX_CONNECTIONS"]),
        (["pull-token"], {"ORIGIN_PULL_TOKEN_FILE": "{tmp}/missing-dir/file"},
         ["ORIGIN_PULL_TOKEN_FILE"]),
        (["pull-token"], {"ORIGIN_PULL_TOKEN_FILE": "{tmp}/short"}, ["ORIGIN_PULL_TOKEN_FILE"]),
    ],
)  # fmt: skip
def test_every_bad_setting_is_one_line_naming_it_and_exit_2(tmp_path, argv, env, names):
    (tmp_path / "short").write_text("short\n")
    (tmp_path / "missing-dir").write_text("a file where a directory should be")
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    result = run_with_settings(["origin", *argv], env, cwd=tmp_path)
    assert_refused(result, "origin: error: ", *names)
