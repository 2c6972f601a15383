"""``delivery users app-password``, run as an operator runs it (a subprocess)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from delivery.db import open_database
from delivery.subsonic.app_passwords import AppPasswords
from delivery.subsonic.auth import ApiKeyLogin, PasswordLogin
from tests.support.servers import part_env, run_part_cli

pytestmark = pytest.mark.slow  # each test runs the CLI as a process


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # Not dev mode: the sealing key is made at the first create all the same.
    return run_part_cli("delivery", ["users", "app-password", *args], cwd=cwd,
                        env=part_env("DELIVERY_"))  # fmt: skip


def test_create_list_revoke(tmp_path):
    made = run(["create", "alice", "--name", "my  phone"], tmp_path)
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["user"] == "alice" and created["name"] == "my phone"
    assert len(created["password"]) == 24 and len(created["api_key"]) >= 40
    key_file = tmp_path / "data" / "keys" / "subsonic-app-passwords.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # What the server checks: the password and the API key prove alice, nothing is in clear.
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'delivery.db'}")
    try:
        passwords = AppPasswords(db, key_file)
        assert passwords.user_for(PasswordLogin("alice", created["password"])) == "alice"
        assert passwords.user_for(ApiKeyLogin(created["api_key"])) == "alice"
        assert passwords.user_for(PasswordLogin("bob", created["password"])) is None
    finally:
        db.close()
    raw = (tmp_path / "data" / "delivery.db").read_bytes()
    assert created["password"].encode() not in raw and created["api_key"].encode() not in raw

    listed = json.loads(run(["list", "alice"], tmp_path).stdout)
    assert [(p["password_id"], p["name"]) for p in listed] == [(created["password_id"], "my phone")]
    assert "password" not in listed[0] and "sealed" not in listed[0]

    revoked = run(["revoke", "alice", created["password_id"]], tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(run(["list", "alice"], tmp_path).stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "bad user"], "invalid user id"),
        (["create", "alice", "--name", "   "], "name must be"),
        (["revoke", "alice", "0123456789abcdef"], "has no app password"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    done = run(args, tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
