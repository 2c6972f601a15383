"""Every signer against tests/data/signing-vectors.json (the CloudFront case has its own key).

The vectors are published examples (nginx docs, Google's Cloud CDN samples, AWS docs),
copied into the repository so a clone with nothing beside it runs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from delivery.signing.cloudcdn import CloudCdnSigner, sign_url, sign_url_prefix, signed_cookie
from delivery.signing.cloudfront import CloudFrontSigner, canned_policy, custom_policy
from delivery.signing.nginx import NginxSecureLinkSigner, secure_link_md5, string_to_hash
from delivery.signing.port import SigningError, UrlRequest
from tests.delivery.sigv4 import presign_signature

VECTORS_PATH = Path(__file__).resolve().parents[2] / "data" / "signing-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())


# -- nginx secure_link_md5 -----------------------------------------------------------


def test_nginx_vector_hash():
    v = VECTORS["nginx_secure_link_md5"]
    built = string_to_hash(
        "$secure_link_expires$uri$remote_addr $secret",
        expires=v["expires"],
        uri=v["uri"],
        secret=v["secret"],
        remote_addr=v["remote_addr"],
    )
    assert built == v["string_to_hash"]
    assert secure_link_md5(built) == v["md5"]


def test_nginx_vector_url_through_the_signer():
    v = VECTORS["nginx_secure_link_md5"]
    # The vector's URI is /s/link: a base URL ending in /s and the object "link".
    signer = NginxSecureLinkSigner(
        "http://nginx.test/s", v["secret"], "$secure_link_expires$uri$remote_addr $secret"
    )
    url = signer.sign(UrlRequest("link", 0, v["expires"], "u", client_ip=v["remote_addr"]))
    assert url == "http://nginx.test" + v["url"]
    # The nginx docs' literal form (secret written into the expression) signs the same.
    literal = NginxSecureLinkSigner("http://nginx.test/s", "unused", v["expression"])
    assert literal.sign(UrlRequest("link", 0, v["expires"], "u", client_ip=v["remote_addr"])) == url


def test_nginx_signer_url_shape():
    signer = NginxSecureLinkSigner(
        "http://nginx.test/base", "s3cret", "$secure_link_expires$uri $secret"
    )
    key = "tracks/t/0123456789abcdef/96.ogg"
    url = signer.sign(UrlRequest(key, 100, 2147483647, "u"))
    parts = urlsplit(url)
    assert parts.path == f"/base/{key}"
    q = parse_qs(parts.query)
    assert q["expires"] == ["2147483647"]
    assert q["md5"] == [secure_link_md5(f"2147483647/base/{key} s3cret")]


def test_nginx_expression_with_unknown_variables_is_refused():
    with pytest.raises(SigningError, match=r"\$http_user_agent"):
        NginxSecureLinkSigner("http://n", "s", "$secure_link_expires$uri$http_user_agent $secret")
    with pytest.raises(SigningError, match="secure_link_expires"):
        NginxSecureLinkSigner("http://n", "s", "$uri $secret")


def test_nginx_remote_addr_needs_the_client_address():
    signer = NginxSecureLinkSigner("http://n", "s", "$secure_link_expires$uri$remote_addr $secret")
    with pytest.raises(SigningError):
        signer.sign(UrlRequest("tracks/t/0123456789abcdef/96.ogg", 1, 2, "u", client_ip=None))


# -- CloudFront -------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudFrontCase:
    """The vector's URL and policy, a key made for this run, and botocore's signer as judge."""

    vector: dict
    private_pem: bytes
    reference: object  # botocore.signers.CloudFrontSigner

    def expected(self, url: str, policy: str | None = None) -> str:
        if policy is None:
            expires = datetime.fromtimestamp(int(self.vector["expires"]), UTC)
            return self.reference.generate_presigned_url(url, date_less_than=expires)
        return self.reference.generate_presigned_url(url, policy=policy)


@pytest.fixture(scope="module")
def cloudfront_case() -> CloudFrontCase:
    from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    v = VECTORS["cloudfront"]

    def rsa_signer(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # CloudFront signs with SHA-1

    return CloudFrontCase(v, pem, BotocoreCloudFrontSigner(v["key_pair_id"], rsa_signer))


@pytest.fixture(scope="module")
def cloudfront(cloudfront_case) -> tuple[dict, CloudFrontSigner]:
    v = cloudfront_case.vector
    base = v["url"].split("/tracks/")[0]
    return v, CloudFrontSigner(base, v["key_pair_id"], cloudfront_case.private_pem)


def test_cloudfront_canned_vector(cloudfront, cloudfront_case):
    v, signer = cloudfront
    expected = cloudfront_case.expected(v["url"])
    assert signer.sign_url(v["url"], v["expires"]) == expected
    key = v["url"].split("/", 3)[3]
    assert signer.sign(UrlRequest(key, 0, v["expires"], "u")) == expected


def test_cloudfront_custom_vector(cloudfront, cloudfront_case):
    v, signer = cloudfront
    assert custom_policy(v["url"], v["expires"], v["custom_ip"]) == v["custom_policy_json"]
    expected = cloudfront_case.expected(v["url"], v["custom_policy_json"])
    assert signer.sign_url(v["url"], v["expires"], v["custom_ip"]) == expected


def test_cloudfront_custom_policy_from_a_bound_request(cloudfront_case):
    v = cloudfront_case.vector
    base = v["url"].split("/tracks/")[0]
    signer = CloudFrontSigner(base, v["key_pair_id"], cloudfront_case.private_pem, ip_prefix_v4=24)
    key = v["url"].split("/", 3)[3]
    request = UrlRequest(key, 0, v["expires"], "u", client_ip="203.0.113.77", bind_ip=True)
    assert signer.sign(request) == cloudfront_case.expected(v["url"], v["custom_policy_json"])


def test_cloudfront_signature_verifies_with_the_public_key(cloudfront, cloudfront_case):
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    v, signer = cloudfront
    url = signer.sign_url(v["url"] + "?x=1", 2000000000)
    q = parse_qs(urlsplit(url).query)
    sig = base64.b64decode(q["Signature"][0].translate(str.maketrans("-_~", "+=/")))
    policy = canned_policy(v["url"] + "?x=1", 2000000000)
    private = serialization.load_pem_private_key(cloudfront_case.private_pem, None)
    private.public_key().verify(sig, policy.encode(), padding.PKCS1v15(), hashes.SHA1())
    assert url.startswith(v["url"] + "?x=1&Expires=2000000000&")


def test_cloudfront_refuses_a_non_rsa_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningError, match="RSA"):
        CloudFrontSigner("https://d.example", "K", pem)


# -- Google Cloud CDN -------------------------------------------------------------------

CDN = VECTORS["google_cloud_cdn"]


def _cdn_key() -> bytes:
    import base64

    return base64.urlsafe_b64decode(CDN["key_base64url"])


@pytest.mark.parametrize("case", [c for c in CDN["cases"] if c["kind"] == "url"])
def test_cloudcdn_url_vectors(case):
    signed = sign_url(case["url"], key_name=CDN["key_name"], key=_cdn_key(), expires=CDN["expires"])
    assert signed == case["signed"]


def test_cloudcdn_url_prefix_vector():
    case = next(c for c in CDN["cases"] if c["kind"] == "url_prefix")
    signed = sign_url_prefix(
        case["url"],
        case["prefix"],
        key_name=CDN["key_name"],
        key=_cdn_key(),
        expires=CDN["expires"],
    )
    assert signed == case["signed"]


def test_cloudcdn_cookie_vector():
    case = next(c for c in CDN["cases"] if c["kind"] == "cookie")
    cookie = signed_cookie(
        case["prefix"], key_name=CDN["key_name"], key=_cdn_key(), expires=CDN["expires"]
    )
    assert cookie == case["cookie"]


def test_cloudcdn_signer_modes():
    key = "tracks/t/0123456789abcdef/160.ogg"
    request = UrlRequest(key, 0, CDN["expires"], "u")
    by_url = CloudCdnSigner("http://35.186.234.33", CDN["key_name"], _cdn_key())
    assert by_url.sign(request) == sign_url(
        f"http://35.186.234.33/{key}",
        key_name=CDN["key_name"],
        key=_cdn_key(),
        expires=CDN["expires"],
    )
    by_prefix = CloudCdnSigner(
        "http://35.186.234.33", CDN["key_name"], _cdn_key(), mode="url_prefix"
    )
    signed = by_prefix.sign(request)
    # One grant covers every rendition of the version: the prefix stops at the version.
    assert signed == sign_url_prefix(
        f"http://35.186.234.33/{key}",
        "http://35.186.234.33/tracks/t/0123456789abcdef/",
        key_name=CDN["key_name"],
        key=_cdn_key(),
        expires=CDN["expires"],
    )


# -- S3 SigV4 presigned URLs -------------------------------------------------------------

S3 = VECTORS["s3_sigv4_presign"]


def _vector_url() -> str:
    return (
        f"{S3['url']}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={S3['access_key']}%2F{S3['datetime'][:8]}%2F{S3['region']}%2Fs3%2Faws4_request"
        f"&X-Amz-Date={S3['datetime']}&X-Amz-Expires={S3['expires']}&X-Amz-SignedHeaders=host"
    )


def test_independent_sigv4_check_matches_the_aws_vector():
    sig = presign_signature(
        method="GET", url=_vector_url(), secret_key=S3["secret_key"], region=S3["region"]
    )
    assert sig == S3["signature"]


@pytest.fixture
def frozen_aws_clock(monkeypatch):
    import botocore.auth

    frozen = datetime.strptime(S3["datetime"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: frozen.replace(tzinfo=None))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3["secret_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_s3_store_presigns_like_the_aws_vector(frozen_aws_clock):
    """The S3 store's own presigned URL (what the ``s3`` signer hands out), made with the
    vector's clock, credentials and region: the vector's shape, and the signature of the
    independent SigV4 check that reproduces the AWS vector above."""
    from origin.s3 import S3Store

    store = S3Store.from_url(f"s3://examplebucket?region={S3['region']}&addressing_style=virtual")
    key = "tracks/t/0123456789abcdef/320.ogg"
    url = store.presigned_url(key, S3["expires"])
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc) == urlsplit(S3["url"])[:2]
    assert parts.path == f"/{key}"
    assert q["X-Amz-Date"] == [S3["datetime"]]
    assert q["X-Amz-Expires"] == [str(S3["expires"])]
    assert q["X-Amz-Credential"] == [
        f"{S3['access_key']}/{S3['datetime'][:8]}/{S3['region']}/s3/aws4_request"
    ]
    assert q["X-Amz-Signature"] == [
        presign_signature(method="GET", url=url, secret_key=S3["secret_key"], region=S3["region"])
    ]


def test_s3_signer_urls_carry_a_valid_sigv4_signature(frozen_aws_clock):
    from delivery.signing.presigned import StorePresignedSigner
    from origin.s3 import S3Store

    store = S3Store.from_url(
        f"s3://examplebucket/audio?region={S3['region']}&addressing_style=virtual"
    )
    signer = StorePresignedSigner("s3", store)
    key = "tracks/t/0123456789abcdef/320.ogg"
    url = signer.sign(UrlRequest(key, 1000, 1900, "u"))
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert parts.netloc == "examplebucket.s3.amazonaws.com"
    assert parts.path == f"/audio/{key}"
    assert q["X-Amz-Expires"] == ["900"]
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert q["X-Amz-Signature"] == [
        presign_signature(method="GET", url=url, secret_key=S3["secret_key"], region=S3["region"])
    ]


def test_presigned_signer_refuses_a_store_of_another_kind(tmp_path):
    from delivery.signing.presigned import StorePresignedSigner
    from origin.local import LocalStore

    with pytest.raises(SigningError, match="file://"):
        StorePresignedSigner("s3", LocalStore(tmp_path))


# -- GCS V4 signed URLs --------------------------------------------------------------------


def test_gcs_signer_urls_carry_a_valid_v4_signature():
    """GCS has no published vector: check the RSA-SHA256 signature with the key's public half."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.oauth2 import service_account

    from delivery.signing.presigned import StorePresignedSigner
    from origin.gcs import GCSStore
    from tests.delivery.sigv4 import goog4_string_to_sign

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    creds = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "client_email": "signer@throwaway.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "throwaway",
            "token_uri": "https://oauth2.googleapis.com/token",
            "project_id": "throwaway",
        }
    )
    client = storage.Client(project="throwaway", credentials=AnonymousCredentials())
    store = GCSStore(client.bucket("media-bucket"), "audio", signing_credentials=creds)
    key = "tracks/t/0123456789abcdef/160.ogg"
    url = StorePresignedSigner("gcs", store).sign(UrlRequest(key, 1000, 1600, "u"))
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert parts.path == f"/media-bucket/audio/{key}"
    assert q["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert q["X-Goog-Expires"] == ["600"]
    assert q["X-Goog-Credential"][0].startswith("signer@throwaway.iam.gserviceaccount.com/")
    signature = bytes.fromhex(q["X-Goog-Signature"][0])
    message = goog4_string_to_sign(method="GET", url=url).encode()
    private.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    tampered = url.replace("X-Goog-Expires=600", "X-Goog-Expires=86400")
    with pytest.raises(InvalidSignature):
        private.public_key().verify(
            signature,
            goog4_string_to_sign(method="GET", url=tampered).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
