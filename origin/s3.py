"""S3Store: the object store on Amazon S3 or any S3-compatible endpoint (``s3://`` URLs).

``s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1``

Credentials come from the usual AWS chain (``AWS_ACCESS_KEY_ID`` ..., a
profile, an instance role) and never from the URL, so they cannot leak into
logs. Signatures are always SigV4: with a custom ``endpoint_url`` boto3 would
otherwise presign in the retired SigV2 form.

Atomicity comes from S3 itself: a PUT, and a multipart upload once it is
completed, replaces the object whole; a GET streams one version from start to
end even if the key is overwritten meanwhile. The content's sha256 travels in
the object's user metadata (``x-amz-meta-sha256``), which is written in the
same request as the bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from origin.bucket import (
    SHA256_META,
    PrefixedBucket,
    recorded_sha256,
    upload_source,
    url_options,
)
from origin.errors import (
    ObjectNotFound,
    RangeNotSatisfiable,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from origin.keys import content_type_for, validate_prefix
from origin.store import (
    CHUNK_SIZE,
    ChunkedReader,
    ObjectInfo,
    content_etag,
    normalize_store_prefix,
    resolve_range,
)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
_URL_OPTIONS = {"endpoint_url", "region", "addressing_style"}
# Large files go up in parts (each part is retried on its own); the object only
# appears when the upload is completed, so readers never see a partial one.
_TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024
)
PRESIGN_METHODS = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the SigV4 limit


def _error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def _unavailable(exc: Exception, what: str) -> StoreUnavailable:
    return StoreUnavailable(f"S3 {what} failed: {type(exc).__name__}: {exc}")


class S3ObjectReader(ChunkedReader):
    """One GetObject response, streamed in chunks; the connection is dropped on close."""

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.end - self.start + 1
        if remaining <= 0 or self._source is None:
            return
        try:
            for chunk in self._source.iter_chunks(self._chunk_size):
                remaining -= len(chunk)
                yield chunk
        except (BotoCoreError, Urllib3Error, OSError) as exc:
            raise _unavailable(exc, f"read of {self.info.key!r}") from None
        if remaining != 0:
            raise StoreUnavailable(f"S3 read of {self.info.key!r} ended {remaining} bytes early")


class S3Store(PrefixedBucket):
    """Objects in ``bucket`` under ``prefix``; key ``tracks/a/b`` is ``{prefix}/tracks/a/b``."""

    def __init__(
        self,
        client,
        bucket: str,
        prefix: str = "",
        *,
        chunk_size: int = CHUNK_SIZE,
        transfer_config: TransferConfig = _TRANSFER,
    ) -> None:
        if not bucket:
            raise StoreConfigError("an S3 store needs a bucket name")
        self._client = client
        self.bucket = bucket
        self.prefix = normalize_store_prefix(prefix)
        self._chunk_size = chunk_size
        self._transfer = transfer_config
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        query = f"?endpoint_url={endpoint}" if endpoint else ""
        self.url = f"s3://{bucket}/{self.prefix}{query}"

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """Build a client from ``s3://bucket/prefix?endpoint_url=..&region=..&addressing_style=..``."""
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StoreConfigError(f"not an s3:// URL: {url!r}")
        if parts.username or parts.password:
            raise StoreConfigError(
                "do not put credentials in the store URL; use AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY or an AWS profile"
            )
        bucket = parts.netloc  # not .hostname, which would lowercase it
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise StoreConfigError(f"invalid S3 bucket name {bucket!r} in {url!r}")
        options = url_options(url, parts.query, _URL_OPTIONS, "S3")
        endpoint = options.get("endpoint_url") or None
        if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
            raise StoreConfigError(f"endpoint_url must be http(s)://..., not {endpoint!r}")
        style = options.get("addressing_style") or ("path" if endpoint else "auto")
        if style not in ("auto", "path", "virtual"):
            raise StoreConfigError(f"addressing_style must be auto, path or virtual, not {style!r}")
        extra = {}
        if endpoint:
            # Many S3-compatible servers reject the CRC checksums newer botocore adds
            # by default; our own sha256 in the metadata covers integrity.
            extra = {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=64,
            **extra,
        )
        try:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name=options.get("region") or None,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:
            raise StoreConfigError(f"cannot build an S3 client for {url!r}: {exc}") from None
        return cls(client, bucket, parts.path)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _info(self, key: str, response: dict, size: int) -> ObjectInfo:
        sha = recorded_sha256(response.get("Metadata"))
        modified = response.get("LastModified") or datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=size,
            etag=content_etag(sha, response.get("ETag", "")),
            content_type=response.get("ContentType") or content_type_for(key),
            modified=modified.astimezone(UTC),
            sha256=sha,
        )

    def _map(self, exc: Exception, key: str, what: str) -> StoreError:
        if isinstance(exc, ClientError):
            code, status = _error_code(exc)
            if code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket"):
                return ObjectNotFound(f"No such key: {key!r}")
            if code == "NoSuchBucket":
                return StoreUnavailable(f"S3 bucket {self.bucket!r} does not exist")
            if code in ("AccessDenied", "403") or status == 403:
                return StoreUnavailable(f"S3 {what} of {key!r}: access denied")
            return StoreUnavailable(f"S3 {what} of {key!r} failed: {code or status}")
        return _unavailable(exc, f"{what} of {key!r}")

    # -- writes ----------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        sha = hashlib.sha256(data).hexdigest()
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=content_type or content_type_for(key),
                Metadata={SHA256_META: sha},
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._map(exc, key, "put") from None
        return self.stat(key)

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        source, sha = upload_source(path)
        extra = {
            "ContentType": content_type or content_type_for(key),
            "Metadata": {SHA256_META: sha},
        }
        try:
            self._client.upload_file(
                str(source), self.bucket, name, ExtraArgs=extra, Config=self._transfer
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._map(exc, key, "upload") from None
        except S3UploadFailedError as exc:  # s3transfer's wrapper around a failed part
            raise _unavailable(exc, f"upload of {key!r}") from None
        return self.stat(key)

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            # DeleteObject on a missing key succeeds, which is the contract we want.
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            mapped = self._map(exc, key, "delete")
            if not isinstance(mapped, ObjectNotFound):
                raise mapped from None

    # -- reads -----------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            raise self._map(exc, key, "stat") from None
        return self._info(key, head, int(head.get("ContentLength", 0)))

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> S3ObjectReader:
        name = self._name(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        kwargs = {"Bucket": self.bucket, "Key": name}
        # A whole-object read sends no Range: S3 refuses any range on an empty object.
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._client.get_object(**kwargs)
        except ClientError as exc:
            code, _ = _error_code(exc)
            if code == "InvalidRange":
                return self._unsatisfiable(key, exc, start, end)
            raise self._map(exc, key, "read") from None
        except BotoCoreError as exc:
            raise self._map(exc, key, "read") from None
        if "Range" in kwargs and not response.get("ContentRange"):
            response["Body"].close()
            raise StoreUnavailable(f"the S3 endpoint ignored the Range of a read of {key!r}")
        size = _total_size(response)
        info = self._info(key, response, size)
        first, last = resolve_range(size, start, end)
        return S3ObjectReader(response["Body"], info, first, last, self._chunk_size)

    def _unsatisfiable(self, key: str, exc: ClientError, start: int, end: int | None):
        actual = exc.response.get("Error", {}).get("ActualObjectSize")
        info = self.stat(key) if actual is None or start == 0 else None
        size = int(actual) if actual is not None else info.size  # type: ignore[union-attr]
        if size == 0 and start == 0 and info is not None:
            # bytes=0-N of an empty object: the contract answers with an empty read.
            return S3ObjectReader(None, info, 0, -1, self._chunk_size)
        raise RangeNotSatisfiable(f"range starts at {start}, object has {size} bytes", size)

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        base = self._list_base()
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
            return self._listed_keys(
                item["Key"] for page in pages for item in page.get("Contents", [])
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._map(exc, prefix, "list") from None

    def check(self) -> None:
        """Raise unless the bucket exists and answers (start-up and readiness probes)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in ("NoSuchBucket", "404"):
                raise StoreConfigError(f"S3 bucket {self.bucket!r} does not exist") from None
            raise self._map(exc, "", "bucket check") from None
        except BotoCoreError as exc:
            raise _unavailable(exc, f"bucket check of {self.bucket!r}") from None

    # -- presigning --------------------------------------------------------------

    def presigned_url(self, key: str, expires_s: int, method: str = "GET") -> str:
        """A SigV4 query-signed URL for ``method`` on ``key``, valid ``expires_s`` seconds."""
        name = self._name(key)
        operation = PRESIGN_METHODS.get(method.upper())
        if operation is None:
            raise ValueError(f"cannot presign {method!r}: use one of {sorted(PRESIGN_METHODS)}")
        if not 1 <= int(expires_s) <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_s must be 1..{MAX_PRESIGN_SECONDS}, not {expires_s!r}")
        try:
            return self._client.generate_presigned_url(
                operation,
                Params={"Bucket": self.bucket, "Key": name},
                ExpiresIn=int(expires_s),
                HttpMethod=method.upper(),
            )
        except BotoCoreError as exc:
            raise StoreConfigError(f"cannot presign {key!r}: {exc}") from None


def _total_size(response: dict) -> int:
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(response.get("ContentLength", 0))
