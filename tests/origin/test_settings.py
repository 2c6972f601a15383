"""ORIGIN_* settings: defaults, overrides, loud validation and the pull-token file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from origin.settings import OriginSettings, describe_validation_error

TOKEN = "a-pull-token-long-enough-1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("STORE", "HOST", "PORT", "PULL_TOKEN", "PULL_TOKEN_FILE", "LOG_LEVEL"):
        monkeypatch.delenv(f"ORIGIN_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults():
    settings = OriginSettings()
    assert settings.store == "file://./data/origin"
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8090, "info")
    assert settings.pull_token is None
    assert settings.pull_token_file == Path("data/secrets/pull-token")


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("ORIGIN_STORE", "s3://bucket/prefix?region=eu-west-1")
    monkeypatch.setenv("ORIGIN_HOST", "0.0.0.0")
    monkeypatch.setenv("ORIGIN_PORT", "9000")
    monkeypatch.setenv("ORIGIN_LOG_LEVEL", "DEBUG")
    settings = OriginSettings()
    assert settings.store == "s3://bucket/prefix?region=eu-west-1"
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9000, "debug")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("STORE", "ftp://host/x"),
        ("STORE", "/plain/path"),
        ("LOG_LEVEL", "chatty"),
        ("PULL_TOKEN", "short"),
        ("PULL_TOKEN", f"{TOKEN},tiny"),
        ("PULL_TOKEN", "a token with spaces inside"),
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(f"ORIGIN_{name}", value)
    with pytest.raises(ValidationError) as caught:
        OriginSettings()
    assert f"ORIGIN_{name}" in describe_validation_error(caught.value)


def test_comma_separated_tokens_all_count(monkeypatch):
    monkeypatch.setenv("ORIGIN_PULL_TOKEN", f" {TOKEN} , second-token-0123456789 ,")
    assert OriginSettings().pull_tokens() == [TOKEN, "second-token-0123456789"]


def test_the_token_never_shows_in_a_repr(monkeypatch):
    monkeypatch.setenv("ORIGIN_PULL_TOKEN", TOKEN)
    settings = OriginSettings()
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_a_token_the_file_is_created_once(monkeypatch, tmp_path, value):
    if value is not None:
        monkeypatch.setenv("ORIGIN_PULL_TOKEN", value)
    monkeypatch.setenv("ORIGIN_PULL_TOKEN_FILE", str(tmp_path / "s" / "token"))
    first = OriginSettings().pull_tokens()
    second = OriginSettings().pull_tokens()
    assert first == second and len(first) == 1 and len(first[0]) == 64
    assert (tmp_path / "s" / "token").stat().st_mode & 0o777 == 0o600


def test_a_short_token_in_the_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "token").write_text("short\n")
    monkeypatch.setenv("ORIGIN_PULL_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ValueError):
        OriginSettings().pull_tokens()
