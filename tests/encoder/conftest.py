"""Encoder test fixtures: one session-wide corpus of generated audio, fresh stores per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoder.settings import EncoderSettings, load_settings
from origin.local import LocalStore
from tests.encoder.media import build_corpus


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    return load_settings().ffmpeg_exe


@pytest.fixture(scope="session")
def media(tmp_path_factory, ffmpeg_exe) -> dict[str, Path]:
    """name -> path of every generated test file (built once per session)."""
    return build_corpus(ffmpeg_exe, tmp_path_factory.mktemp("encoder-media"))


@pytest.fixture
def work_dir(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def settings(work_dir) -> EncoderSettings:
    return load_settings(work_dir=work_dir, store="file:///nonexistent-use-the-store-fixture")


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "origin")
