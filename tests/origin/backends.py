"""Stores for tests that need a backend in a particular state (shared by several test files)."""

from __future__ import annotations

import boto3
from botocore.config import Config
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from origin.gcs import GCSStore
from origin.local import LocalStore
from origin.s3 import S3Store
from tests.support.servers import free_port


def unreachable_store(kind: str, tmp_path):
    """A store whose backend cannot be reached: any I/O would fail loudly."""
    port = free_port()  # released again at once: nothing listens there
    if kind == "local":
        root = tmp_path / "gone"
        store = LocalStore(root)
        root.rmdir()
        return store
    if kind == "s3":
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
        )
        return S3Store(client, "bucket", "p")
    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://127.0.0.1:{port}"},
    )
    return GCSStore(client.bucket("bucket"), "p", retry=None, timeout=(2, 5))
