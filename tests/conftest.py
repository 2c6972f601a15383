"""Shared fixtures: real servers started once per session and stopped by pid."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.servers import postgres_server, start_gcs_emulator, start_moto


@pytest.fixture(scope="session")
def moto_endpoint():
    """URL of a moto S3 server process (it does not check signatures)."""
    server, url = start_moto()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_endpoint():
    """URL of a gcp-storage-emulator process (in memory; it does not check signatures)."""
    server, url = start_gcs_emulator()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        server.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throwaway PostgreSQL server started for this test session."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def unique_name():
    return f"t{uuid.uuid4().hex[:12]}"
