"""The ``delivery`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import jwt
import pytest

from delivery.cli import CliError, parse_duration
from tests.support.servers import part_env, run_part_cli
from tests.support.settings_cli import assert_refused, run_with_settings

pytestmark = pytest.mark.slow  # each test runs the CLI as a process


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    # These tests use the dev secrets: opt in.
    full_env = part_env("DELIVERY_", **{"DELIVERY_DEV_MODE": "true", **env})
    return run_part_cli("delivery", args, cwd=cwd, env=full_env)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1h", "1w", "h", "1.5h"])
def test_parse_duration_refuses(text):
    with pytest.raises(CliError):
        parse_duration(text)


def test_dev_mode_generates_secrets_0600_and_mints_a_token(tmp_path):
    done = run(["token", "--user", "alice", "--tier", "premium", "--ttl", "1h"], tmp_path)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    secret_file = tmp_path / "data" / "secrets" / "user-jwt"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    claims = jwt.decode(
        token, secret_file.read_text().strip(), algorithms=["HS256"], audience="audiocdn-delivery"
    )
    assert (claims["sub"], claims["tier"], claims["iss"]) == ("alice", "premium", "audiocdn")
    assert claims["exp"] - claims["iat"] == 3600
    # A second run reuses the same secret (generated once).
    again = run(["token", "--user", "bob"], tmp_path)
    assert (
        jwt.decode(
            again.stdout.strip(),
            secret_file.read_text().strip(),
            algorithms=["HS256"],
            audience="audiocdn-delivery",
        )["sub"]
        == "bob"
    )


def test_token_refused_without_a_local_secret(tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    done = run(
        ["token", "--user", "alice"], tmp_path, DELIVERY_DEV_MODE="false", DELIVERY_JWKS=str(jwks)
    )
    assert done.returncode == 2
    assert "no local token secret" in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing generated outside dev mode


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "--user", "a b"], "invalid user id"),
        (["token", "--user", "a", "--tier", "gold"], "unknown tier"),
        (["token", "--user", "a", "--ttl", "forever"], "invalid duration"),
        (["token", "--user", "a", "--ttl", "90d"], "longer than"),
        (["users", "set-tier", "a", "gold"], "unknown tier"),
        (["users", "get", "../x"], "invalid user id"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    done = run(args, tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_settings_fail_loudly(tmp_path):
    done = run(["users", "get", "a"], tmp_path, DELIVERY_ENTITLEMENTS='{"free": [100]}')
    assert done.returncode == 2
    assert "DELIVERY_ENTITLEMENTS" in done.stderr


def test_users_set_tier_and_get(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    done = run(["users", "set-tier", "alice", "premium"], tmp_path, DELIVERY_DATABASE_URL=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tier"] == "premium"
    shown = json.loads(run(["users", "get", "alice"], tmp_path, DELIVERY_DATABASE_URL=db).stdout)
    assert (shown["user_id"], shown["tier"]) == ("alice", "premium")
    unknown = json.loads(run(["users", "get", "zed"], tmp_path, DELIVERY_DATABASE_URL=db).stdout)
    assert (unknown["tier"], unknown["updated_at"]) == ("free", None)


def test_config_masks_secrets(tmp_path):
    done = run(
        ["config"], tmp_path, DELIVERY_JWT_HS256_SECRETS="s" * 40, DELIVERY_NGINX_SECRET="topsecret"
    )
    assert done.returncode == 0, done.stderr
    assert "s" * 40 not in done.stdout and "topsecret" not in done.stdout
    assert json.loads(done.stdout)["signer"] == "edge"


# -- settings: read once by main(), every bad value one line naming it, exit 2 ---------------

DELIVERY = "delivery"


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["serve"], {"DELIVERY_PLAYLIST_PAGE_MAX": "0"}, ["DELIVERY_PLAYLIST_PAGE_MAX"]),
        (["config"], {"DELIVERY_PORT": "abc"}, ["DELIVERY_PORT"]),
        (["config"], {"DELIVERY_ENTITLEMENTS": "not json"}, ["DELIVERY_ENTITLEMENTS"]),
        (
            ["serve"],
            {"DELIVERY_PORT": "abc", "DELIVERY_EVENTS_POLL_S": "0", "DELIVERY_SIGNER": "akamai"},
            ["DELIVERY_PORT", "DELIVERY_EVENTS_POLL_S", "DELIVERY_SIGNER"],
        ),
        (["serve", "--port", "99999", "--workers", "0"], {}, ["--port", "--workers"]),
        (["catalog", "sync"], {"DELIVERY_SEARCH_FUZZY_THRESHOLD": "2"},
         ["DELIVERY_SEARCH_FUZZY_THRESHOLD"]),
        (["events", "failed"], {"DELIVERY_EVENTS_MAX_ATTEMPTS": "1"},
         ["DELIVERY_EVENTS_MAX_ATTEMPTS"]),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_each_and_exit_2(tmp_path, argv, env, names):
    result = run_with_settings([DELIVERY, *argv], {"DELIVERY_DEV_MODE": "true", **env}, tmp_path)
    assert_refused(result, "delivery: error: ", *names)
    assert not (tmp_path / "data").exists()  # refused before anything was generated


def test_serve_without_user_token_keys_is_refused_in_one_line(tmp_path):
    result = run_with_settings([DELIVERY, "serve"], {}, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "DELIVERY_JWT_HS256_SECRETS" in line and "DELIVERY_JWKS" in line


def test_config_prints_every_setting_the_modules_included(tmp_path):
    from delivery.settings import DeliverySettings

    result = run_with_settings([DELIVERY, "config"], {"DELIVERY_PLAYLIST_PAGE_MAX": "20"}, tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    secret = {"jwt_hs256_secrets", "admin_tokens"}  # left out; other secrets are masked
    assert set(shown) == set(DeliverySettings.model_fields) - secret
    assert (shown["playlist_page_max"], shown["events_poll_s"]) == (20, 0.25)
