"""S3Store specifics: URL parsing, prefixes, bucket checks and SigV4 presigned URLs."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from origin.errors import InvalidKey, StoreConfigError
from origin.keys import latest_key, rendition_key
from origin.s3 import S3Store
from origin.store import Presigner, open_store

pytestmark = pytest.mark.slow  # moto S3 server

# AWS S3 API docs, "Authenticating Requests: Using Query Parameters" example.
AWS_DOC_VECTOR = {
    "access_key": "AKIAIOSFODNN7EXAMPLE",
    "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "url": "https://examplebucket.s3.amazonaws.com/test.txt",
    "datetime": "20130524T000000Z",
    "region": "us-east-1",
    "expires": 86400,
    "signature": "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
}
KEY = rendition_key("song", "0123456789abcdef", 96)


def sigv4_query_signature(method: str, url: str, secret: str) -> str:
    """Recompute a presigned URL's SigV4 signature from first principles (AWS docs)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(q for q in query if q[0] != "X-Amz-Signature")
    )
    signed = params["X-Amz-SignedHeaders"]
    assert signed == "host"
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, f"host:{parts.netloc}\n", signed, "UNSIGNED-PAYLOAD"]
    )
    _access, scope = params["X-Amz-Credential"].split("/", 1)
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_sigv4_checker_reproduces_the_aws_documentation_vector():
    v = AWS_DOC_VECTOR
    date = v["datetime"][:8]
    credential = f"{v['access_key']}/{date}/{v['region']}/s3/aws4_request"
    url = (
        f"{v['url']}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={quote(credential, safe='')}"
        f"&X-Amz-Date={v['datetime']}&X-Amz-Expires={v['expires']}&X-Amz-SignedHeaders=host"
    )
    assert sigv4_query_signature("GET", url, v["secret_key"]) == v["signature"]


@pytest.fixture
def s3_client(moto_endpoint):
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="test-secret-key",
        config=Config(signature_version="s3v4"),
    )


@pytest.fixture
def bucket(s3_client, unique_name):
    name = f"p-{unique_name.lower()}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT"])
def test_presigned_urls_are_sigv4_and_verify(s3_client, bucket, method):
    store = S3Store(s3_client, bucket, "audio")
    url = store.presigned_url(KEY, 600, method)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert urlsplit(url).path == f"/{bucket}/audio/{KEY}"
    signature = query["X-Amz-Signature"][0]
    assert sigv4_query_signature(method, url, "test-secret-key") == signature
    # ... and a different method or secret would not verify.
    other = "PUT" if method != "PUT" else "GET"
    assert sigv4_query_signature(other, url, "test-secret-key") != signature
    assert sigv4_query_signature(method, url, "wrong-secret") != signature


def test_presigned_get_fetches_the_object(s3_client, bucket):
    # moto does not check signatures: this shows the URL names the right object, nothing more.
    store = S3Store(s3_client, bucket, "audio")
    store.put_bytes(KEY, b"ogg bytes")
    response = httpx.get(store.presigned_url(KEY, 60))
    assert response.status_code == 200
    assert response.content == b"ogg bytes"


def test_store_from_url_presigns_with_sigv4_even_on_a_custom_endpoint(s3_store_url):
    store = open_store(s3_store_url)
    assert isinstance(store, Presigner)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in store.presigned_url(KEY, 60)


@pytest.mark.parametrize(
    ("expires", "method"), [(0, "GET"), (7 * 24 * 3600 + 1, "GET"), (60, "DELETE")]
)
def test_presign_refuses_bad_arguments(s3_client, bucket, expires, method):
    with pytest.raises(ValueError):
        S3Store(s3_client, bucket).presigned_url(KEY, expires, method)


def test_presign_validates_the_key(s3_client, bucket):
    with pytest.raises(InvalidKey):
        S3Store(s3_client, bucket).presigned_url("tracks/../../etc/passwd", 60)


def test_prefixes_isolate_stores_in_one_bucket(s3_client, bucket):
    a = S3Store(s3_client, bucket, "a")
    b = S3Store(s3_client, bucket, "/b/")
    a.put_bytes(KEY, b"from a")
    assert not b.exists(KEY)
    assert b.list() == []
    assert s3_client.get_object(Bucket=bucket, Key=f"a/{KEY}")["Body"].read() == b"from a"


def test_multipart_uploads_keep_the_sha_and_the_content_etag(s3_client, bucket, tmp_path):
    five_mib = 5 * 1024 * 1024  # S3's smallest part
    store = S3Store(
        s3_client,
        bucket,
        transfer_config=TransferConfig(multipart_threshold=five_mib, multipart_chunksize=five_mib),
    )
    source = tmp_path / "big.ogg"
    source.write_bytes(b"".join(bytes([i]) * (1024 * 1024) for i in range(12)))
    info = store.put_file(KEY, source)
    native = s3_client.head_object(Bucket=bucket, Key=KEY)["ETag"]
    assert native.endswith('-3"')  # really uploaded in three parts
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert info.etag == f'"{info.sha256[:32]}"'
    assert store.get_bytes(KEY) == source.read_bytes()


def test_objects_outside_the_layout_are_not_listed(s3_client, bucket):
    store = S3Store(s3_client, bucket)
    store.put_bytes(latest_key("song"), b"{}")
    s3_client.put_object(Bucket=bucket, Key="tracks/song/notes.txt", Body=b"stray")
    s3_client.put_object(Bucket=bucket, Key="elsewhere/file", Body=b"stray")
    assert store.list() == [latest_key("song")]


def test_an_object_written_by_another_tool_has_no_sha_but_an_etag(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"raw")
    info = S3Store(s3_client, bucket).stat(KEY)
    assert info.sha256 is None
    assert info.etag == f'"{hashlib.md5(b"raw").hexdigest()}"'  # noqa: S324 - S3's own ETag
    assert info.content_type  # whatever the other tool set, or a default


def test_check_passes_for_an_existing_bucket_and_fails_loudly_otherwise(s3_client, bucket):
    S3Store(s3_client, bucket).check()
    with pytest.raises(StoreConfigError, match="does not exist"):
        S3Store(s3_client, "no-such-bucket-here").check()


def test_from_url_reads_endpoint_region_and_prefix(moto_endpoint, bucket):
    store = open_store(f"s3://{bucket}/some/prefix/?endpoint_url={moto_endpoint}&region=eu-west-1")
    assert isinstance(store, S3Store)
    assert store.bucket == bucket
    assert store.prefix == "some/prefix"
    store.put_bytes(KEY, b"x")
    assert store.get_bytes(KEY) == b"x"


@pytest.mark.parametrize(
    "url",
    [
        "s3:///prefix",  # no bucket
        "s3://UPPER/prefix",
        "s3://b/prefix",  # too short
        "s3://bucket/../escape",
        "s3://bucket/p?endpoint=http://x",  # unknown option
        "s3://bucket/p?endpoint_url=ftp://x",
        "s3://bucket/p?addressing_style=sideways",
        "s3://key:secret@bucket/p",  # credentials never go in URLs
    ],
)
def test_bad_urls_fail_loudly(url):
    with pytest.raises(StoreConfigError):
        open_store(url)


def test_unsupported_scheme_fails_loudly():
    with pytest.raises(StoreConfigError, match="unsupported store URL"):
        open_store("ftp://example.com/x")
