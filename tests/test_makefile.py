"""`make run` installs what running needs and nothing more; `make test` adds the test extras.

Checked with ``make -n`` (print, do not run) in a fresh copy: no virtualenv yet."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _planned(target: str, fresh: Path) -> list[str]:
    # Under `make test` the parent make's variables would make this one print
    # "Entering/Leaving directory" lines: plan as a top-level make would.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=fresh,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture
def fresh(tmp_path) -> Path:
    assert shutil.which("make"), "these tests plan `make` targets: install make"
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_make_run_on_a_fresh_clone_installs_the_package_only(fresh):
    lines = _planned("run", fresh)
    installs = [line for line in lines if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all(line.rstrip().endswith("-e .") for line in installs), installs
    assert not any("[test]" in line for line in lines)
    # The system packages the stack runs (the encoder's oggenc), none of the tests' ones.
    apt = [line for line in lines if "apt-get install" in line]
    assert len(apt) == 1 and "vorbis-tools" in apt[0], apt
    for test_only in ("nginx", "postgresql", "chromium", "redis-server", "wrk"):
        assert test_only not in apt[0], apt[0]
    assert lines[-1].endswith("-m scripts.run_stack")


def test_make_test_on_a_fresh_clone_adds_the_test_extras(fresh):
    lines = _planned("test", fresh)
    assert any("pip install" in line and "'.[test]'" in line for line in lines)
    assert any(line.startswith(".venv/bin/python -m venv") or "-m venv .venv" in line
               for line in lines)  # fmt: skip
    assert lines[-1].startswith(".venv/bin/python -m pytest")


def test_make_test_fast_runs_lint_and_the_tests_not_marked_slow(fresh):
    lines = _planned("test-fast", fresh)
    assert any("ruff check" in line for line in lines)
    assert any("ruff format --check" in line for line in lines)
    assert lines[-1].startswith('.venv/bin/python -m pytest -m "not slow"')
