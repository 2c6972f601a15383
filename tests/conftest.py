"""Shared fixtures: real servers started once per session and stopped by pid."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.servers import postgres_server, redis_server, start_gcs_emulator, start_moto


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


@pytest.fixture(scope="session")
def redis_url():
    """URL of a throwaway Redis server started for this test session."""
    with redis_server() as url:
        yield url


@pytest.fixture
def anyio_backend():
    return "asyncio"  # every async test runs on asyncio, as the servers do


@pytest.fixture
def unique_name():
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_store_url(moto_endpoint, unique_name):
    """An ``s3://`` store URL on a fresh, empty bucket of the session's moto server."""
    import boto3
    from botocore.config import Config

    bucket = f"b-{unique_name.lower()}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/audio?endpoint_url={moto_endpoint}&region=us-east-1"


@pytest.fixture
def gcs_store_url(gcs_endpoint, unique_name):
    """A ``gs://`` store URL on a fresh, empty bucket of the session's GCS emulator.

    ``STORAGE_EMULATOR_HOST`` is set for the session by ``gcs_endpoint``, so
    ``open_store(url)`` talks to the emulator with anonymous credentials.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = f"b-{unique_name.lower()}"
    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_endpoint},
    )
    client.create_bucket(bucket)
    return f"gs://{bucket}/audio"
