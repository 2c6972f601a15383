"""Fixtures for the origin tests: one store per backend, each on a real server or disk."""

from __future__ import annotations

import pytest

from origin.local import LocalStore
from origin.store import open_store

# moto answers slowly: its share of the contract (about 15 s) is left to `make test`.
S3 = pytest.param("s3", marks=pytest.mark.slow)
BACKENDS = ["local", S3, "gcs"]


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path):
    """A fresh, empty store of ``kind`` built from its URL, as a user would."""
    if kind == "local":
        return LocalStore(tmp_path / "store")
    if kind == "s3":
        return open_store(request.getfixturevalue("s3_store_url"))
    if kind == "gcs":
        return open_store(request.getfixturevalue("gcs_store_url"))
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    """Every contract test runs once per backend; the remote servers start on first use."""
    return make_store(request.param, request, tmp_path)


@pytest.fixture
def local_store(tmp_path):
    return LocalStore(tmp_path / "store")
