"""Independent checks of presigned URLs, written from the providers' docs.

AWS SigV4 query-string auth (S3) and Google's V4 signing (GCS, ``GOOG4-RSA-SHA256``)
share one canonical-request layout. Used to verify URLs our ``s3``/``gcs`` signers
produce without trusting the code that made them (the emulators do not verify).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _enc(value: str) -> str:
    return quote(value, safe="-_.~")


def _canonical(method: str, url: str, prefix: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    params = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k != f"{prefix}Signature"
    ]
    fields = dict(params)
    if fields[f"{prefix}SignedHeaders"] != "host":
        raise ValueError(
            f"only host is expected to be signed, got {fields[f'{prefix}SignedHeaders']!r}"
        )
    query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params))
    canonical = "\n".join(
        [method, parts.path or "/", query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    return canonical, fields


def goog4_string_to_sign(*, method: str, url: str) -> str:
    """What a GCS V4 signed URL's X-Goog-Signature (RSA-SHA256, hex) must sign."""
    canonical, fields = _canonical(method, url, "X-Goog-")
    date = fields["X-Goog-Date"]
    scope = fields["X-Goog-Credential"].split("/", 1)[1]
    return "\n".join(
        ["GOOG4-RSA-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )


def presign_signature(
    *, method: str, url: str, secret_key: str, region: str, service: str = "s3"
) -> str:
    """The signature a presigned ``url`` must carry (its X-Amz-Signature is ignored)."""
    parts = urlsplit(url)
    params = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"
    ]
    query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params))
    amz_date = dict(params)["X-Amz-Date"]
    signed_headers = dict(params)["X-Amz-SignedHeaders"]
    if signed_headers != "host":
        raise ValueError(f"only host is expected to be signed, got {signed_headers!r}")
    canonical = "\n".join(
        [method, parts.path or "/", query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
