"""GCSStore specifics: URL parsing, prefixes, bucket checks and V4 signed URLs."""

from __future__ import annotations

import binascii
import hashlib
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account

from origin.errors import InvalidKey, StoreConfigError
from origin.gcs import GCSStore
from origin.keys import latest_key, rendition_key
from origin.store import Presigner, open_store

KEY = rendition_key("song", "0123456789abcdef", 96)


@pytest.fixture(scope="module")
def signer():
    """A throwaway service-account key: (credentials, public key)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "throwaway",
            "private_key": pem,
            "client_email": "signer@test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    return credentials, private.public_key()


def verify_v4_signature(method: str, url: str, public_key) -> None:
    """Check a V4 signed URL from first principles (GCS "signatures" docs); raise if bad."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(q for q in query if q[0] != "X-Goog-Signature")
    )
    assert params["X-Goog-SignedHeaders"] == "host"
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    public_key.verify(
        binascii.unhexlify(params["X-Goog-Signature"]),
        string_to_sign.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


@pytest.fixture
def client(gcs_endpoint):
    return storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_endpoint},
    )


@pytest.fixture
def bucket(client, unique_name):
    return client.create_bucket(f"p-{unique_name.lower()}")


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT"])
def test_presigned_urls_are_v4_and_verify(bucket, signer, method):
    credentials, public_key = signer
    store = GCSStore(bucket, "audio")
    url = store.presigned_url(KEY, 900, method, credentials=credentials)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Goog-Expires"] == ["900"]
    assert query["X-Goog-Credential"][0].startswith("signer@test.iam.gserviceaccount.com/")
    assert urlsplit(url).path == f"/{bucket.name}/audio/{KEY}"
    verify_v4_signature(method, url, public_key)
    other = "PUT" if method != "PUT" else "GET"
    with pytest.raises(InvalidSignature):
        verify_v4_signature(other, url, public_key)


def test_signing_credentials_can_be_given_to_the_store(bucket, signer):
    credentials, public_key = signer
    store = GCSStore(bucket, signing_credentials=credentials)
    assert isinstance(store, Presigner)
    verify_v4_signature("GET", store.presigned_url(KEY, 60), public_key)


def test_presigned_get_fetches_the_object_from_the_emulator(bucket, signer):
    # The emulator does not check signatures: this shows the URL names the right object.
    store = GCSStore(bucket, "audio", signing_credentials=signer[0])
    store.put_bytes(KEY, b"ogg bytes")
    response = httpx.get(store.presigned_url(KEY, 60))
    assert response.status_code == 200
    assert response.content == b"ogg bytes"


def test_presigning_without_signing_credentials_fails_clearly(bucket):
    with pytest.raises(StoreConfigError, match="service-account"):
        GCSStore(bucket).presigned_url(KEY, 60)


@pytest.mark.parametrize(
    ("expires", "method"), [(0, "GET"), (7 * 24 * 3600 + 1, "GET"), (60, "DELETE")]
)
def test_presign_refuses_bad_arguments(bucket, signer, expires, method):
    with pytest.raises(ValueError):
        GCSStore(bucket).presigned_url(KEY, expires, method, credentials=signer[0])


def test_presign_validates_the_key(bucket, signer):
    with pytest.raises(InvalidKey):
        GCSStore(bucket).presigned_url("tracks/%2e%2e/x", 60, credentials=signer[0])


def test_prefixes_isolate_stores_in_one_bucket(bucket):
    a = GCSStore(bucket, "a")
    b = GCSStore(bucket, "/b/")
    a.put_bytes(KEY, b"from a")
    assert not b.exists(KEY)
    assert b.list() == []
    assert bucket.blob(f"a/{KEY}").download_as_bytes() == b"from a"


def test_objects_outside_the_layout_are_not_listed(bucket):
    store = GCSStore(bucket)
    store.put_bytes(latest_key("song"), b"{}")
    bucket.blob("tracks/song/notes.txt").upload_from_string(b"stray")
    bucket.blob("elsewhere/file").upload_from_string(b"stray")
    assert store.list() == [latest_key("song")]


def test_an_object_written_by_another_tool_has_no_sha_but_an_etag(bucket):
    bucket.blob(KEY).upload_from_string(b"raw", content_type="audio/ogg")
    info = GCSStore(bucket).stat(KEY)
    assert info.sha256 is None
    assert info.etag.startswith('"') and len(info.etag) > 2
    assert GCSStore(bucket).get_bytes(KEY) == b"raw"


def test_check_passes_for_an_existing_bucket_and_fails_loudly_otherwise(client, bucket):
    GCSStore(bucket).check()
    with pytest.raises(StoreConfigError, match="does not exist"):
        GCSStore(client.bucket("no-such-bucket-here")).check()


def test_from_url_uses_the_emulator_and_the_prefix(gcs_store_url):
    store = open_store(gcs_store_url.replace("/audio", "/some/prefix/"))
    assert isinstance(store, GCSStore)
    assert store.prefix == "some/prefix"
    store.put_bytes(KEY, b"x")
    assert store.get_bytes(KEY) == b"x"


@pytest.mark.parametrize(
    "url",
    [
        "gs:///prefix",
        "gs://UPPER/prefix",
        "gs://b/prefix",
        "gs://bucket/../escape",
        "gs://bucket/p?endpoint=http://x",
        "gs://key:secret@bucket/p",
    ],
)
def test_bad_urls_fail_loudly(url, gcs_endpoint):
    with pytest.raises(StoreConfigError):
        open_store(url)
