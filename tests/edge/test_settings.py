"""Edge settings: typed, read once, validated loudly (the message names the variable)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from common.signing_keys import hs256_verification_key
from edge.errors import EdgeConfigError
from edge.settings import load_settings, parse_size
from edge.token import TokenVerifier
from tests.support.servers import VENV_BIN
from tests.support.settings_cli import assert_refused, run_with_settings

EDGE = str(VENV_BIN / "edge")


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("1234", 1234), ("64k", 65536), ("512MiB", 512 << 20), ("2GiB", 2 << 30),
     ("1.5G", 3 << 29), (4096, 4096)],
)  # fmt: skip
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "12XB", "-5"])
def test_parse_size_refuses_garbage(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_environment_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_UPSTREAM", "http://a:1/, http://b:2")
    monkeypatch.setenv("EDGE_CACHE_DISK_MAX_BYTES", "1GiB")
    monkeypatch.setenv("EDGE_TOKEN_HS256_SECRETS", "s" * 32)
    monkeypatch.setenv("EDGE_TOKEN_PUBLIC_KEYS", "")
    s = load_settings()
    assert s.upstream == ["http://a:1", "http://b:2"] and not s.upstream_is_store
    assert s.cache_disk_max_bytes == 1 << 30
    assert [k.algorithm for k in s.resolve_verification_keys()] == ["HS256"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EDGE_UPSTREAM": "ftp://x"}, "EDGE_UPSTREAM"),
        ({"EDGE_UPSTREAM": "file:///a,http://b"}, "EDGE_UPSTREAM"),
        ({"EDGE_UPSTREAM": "http://a,http://a"}, "EDGE_UPSTREAM"),
        ({"EDGE_TOKEN_HS256_SECRETS": "short"}, "EDGE_TOKEN_HS256_SECRETS"),
        ({"EDGE_CACHE_DISK_MAX_BYTES": "big"}, "EDGE_CACHE_DISK_MAX_BYTES"),
        ({"EDGE_PORT": "70000"}, "EDGE_PORT"),
        ({"EDGE_UPSTREAM_RETRIES": "-1"}, "EDGE_UPSTREAM_RETRIES"),
        ({"EDGE_CACHE_MEMORY_MAX_OBJECT_BYTES": "1GiB"}, "EDGE_CACHE_MEMORY_MAX_OBJECT_BYTES"),
        ({"EDGE_TOKEN_PUBLIC_KEYS": "", "EDGE_TOKEN_HS256_SECRETS": ""}, "EDGE_TOKEN_PUBLIC_KEYS"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, variable):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(EdgeConfigError) as err:
        load_settings()
    assert variable in str(err.value)


def test_missing_key_file_fails_at_start_up(tmp_path):
    s = load_settings(token_public_keys=str(tmp_path / "nope.pem"), dev_mode=False)
    with pytest.raises(EdgeConfigError, match="EDGE_TOKEN_PUBLIC_KEYS"):
        s.resolve_verification_keys()


def test_missing_pull_token_file_fails_outside_dev_mode(tmp_path):
    s = load_settings(pull_token_file=tmp_path / "none", dev_mode=False)
    with pytest.raises(EdgeConfigError, match="EDGE_PULL_TOKEN_FILE"):
        s.resolve_pull_token()


def test_dev_mode_is_opt_in_and_nothing_is_generated_without_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGE_DEV_MODE", raising=False)
    s = load_settings()
    assert s.dev_mode is False
    with pytest.raises(EdgeConfigError, match="EDGE_TOKEN_PUBLIC_KEYS.*EDGE_DEV_MODE=true"):
        s.resolve_verification_keys()
    with pytest.raises(EdgeConfigError, match="EDGE_PULL_TOKEN_FILE"):
        s.resolve_pull_token()
    assert not (tmp_path / "data").exists()


def test_token_max_lifetime_defaults_to_delivery_ceiling(monkeypatch):
    monkeypatch.delenv("EDGE_TOKEN_MAX_LIFETIME_S", raising=False)
    assert load_settings().token_max_lifetime_s == 86400
    monkeypatch.setenv("EDGE_TOKEN_MAX_LIFETIME_S", "0")
    with pytest.raises(EdgeConfigError, match="EDGE_TOKEN_MAX_LIFETIME_S"):
        load_settings()


def test_dev_mode_generates_keys_and_pull_token_with_0600(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGE_DEV_MODE", "true")
    s = load_settings()
    keys = s.resolve_verification_keys()
    token = s.resolve_pull_token()
    assert keys[0].algorithm == "EdDSA" and len(token) >= 32
    for path in ("data/keys/stream-signing.pem", "data/secrets/pull-token"):
        assert stat.S_IMODE(os.stat(tmp_path / path).st_mode) == 0o600
    assert s.resolve_accepted_pull_tokens(token) == [token]
    assert load_settings(accept_pull_token="off").resolve_accepted_pull_tokens(token) == []


def test_serve_refuses_bad_settings_with_one_line(tmp_path):
    env = {**os.environ, "EDGE_UPSTREAM": "ftp://nowhere", "EDGE_PORT": "1"}
    r = subprocess.run([EDGE, "serve"], env=env, capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge serve:") and "EDGE_UPSTREAM" in lines[0]


def test_sign_prints_a_url_the_edge_accepts(tmp_path):
    secret = "x" * 40
    path = "/tracks/t1/0123456789abcdef/96.ogg"
    r = subprocess.run(
        [EDGE, "sign", path, "--hs256-secret", secret, "--edge", "http://127.0.0.1:8080/",
         "--ttl", "60"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    url = r.stdout.strip()
    assert url.startswith(f"http://127.0.0.1:8080{path}?token=")
    claims = TokenVerifier([hs256_verification_key(secret)]).verify(url.split("token=")[1], path)
    assert claims.sub == "dev"


def test_sign_refuses_a_bad_path():
    r = subprocess.run([EDGE, "sign", "tracks/../etc/passwd", "--hs256-secret", "x" * 40],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "invalid object key" in r.stderr


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        ([], {"EDGE_PORT": "abc"}, ["EDGE_PORT"]),
        ([], {"EDGE_MAX_HEADER_BYTES": "1"}, ["EDGE_MAX_HEADER_BYTES"]),
        ([], {"EDGE_WORKERS": "0"}, ["EDGE_WORKERS"]),
        ([], {"EDGE_HOLD_UNVERIFIED": "perhaps"}, ["EDGE_HOLD_UNVERIFIED"]),
        ([], {"EDGE_TOKEN_JWKS_URL": "ftp://x/jwks.json"}, ["EDGE_TOKEN_JWKS_URL"]),
        ([], {"EDGE_CACHE_DISK_MAX_BYTES": "big", "EDGE_UPSTREAM": "ftp://x"},
         ["EDGE_CACHE_DISK_MAX_BYTES", "EDGE_UPSTREAM"]),
        (["--workers", "0"], {}, ["--workers"]),
        (["--port", "70000"], {"EDGE_PORT": "8080"}, ["--port"]),
        # Workers build their app from the environment alone: it must hold without --port.
        (["--port", "18080"], {"EDGE_PORT": "abc"}, ["EDGE_PORT"]),
    ],
)  # fmt: skip
def test_serve_names_every_bad_setting_on_its_own_line(tmp_path, argv, env, names):
    result = run_with_settings(["edge", "serve", *argv], env, cwd=tmp_path)
    assert_refused(result, "edge serve: ", *names)
    assert not (tmp_path / "data").exists()  # refused before anything was generated


def test_settings_errors_are_edge_config_errors_with_a_line_per_value(monkeypatch):
    monkeypatch.setenv("EDGE_PORT", "abc")
    monkeypatch.setenv("EDGE_UPSTREAM_RETRIES", "-1")
    with pytest.raises(EdgeConfigError) as err:
        load_settings({"workers": "--workers"}, workers=0)
    assert sorted(line.split(":")[0] for line in err.value.lines) == [
        "--workers",
        "EDGE_PORT",
        "EDGE_UPSTREAM_RETRIES",
    ]
