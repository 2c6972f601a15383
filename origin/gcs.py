"""GCSStore: the object store on Google Cloud Storage (``gs://bucket/prefix`` URLs).

Credentials come from Application Default Credentials. When
``STORAGE_EMULATOR_HOST`` is set (tests, local emulators) the client talks to
that endpoint with anonymous credentials instead.

Atomicity comes from GCS itself: an upload (single request or resumable)
creates a new *generation* only when it is finalized, so readers see the old
object or the whole new one. A read first fetches the object's metadata, then
streams the bytes of exactly that generation in ONE ranged request (the media
URL names the generation), so a concurrent overwrite can neither mix two
generations into one read nor pair one generation's metadata with another's
bytes; if the generation is gone by then, the read starts over a few times and
then raises StoreUnavailable. Emulators ignore the generation in the URL, so the
response's size and sha256 headers are checked as well. The content's sha256
travels in the blob's custom metadata.

Streaming uses the client's authorized ``requests`` session (``client._http``)
directly: the library's own download helpers either buffer a whole range in
memory or split it into several requests.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

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

_URL_OPTIONS = {"project"}
# Resumable uploads hold one chunk in memory; 8 MiB keeps a large upload bounded
# (the library's default would read up to 100 MiB at once).
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the V4 signing limit
PRESIGN_METHODS = ("GET", "HEAD", "PUT")
_OPEN_ATTEMPTS = 4
_TRANSPORT_ERRORS = (requests.RequestException, auth_exc.TransportError, ConnectionError)


def _unavailable(exc: BaseException, what: str) -> StoreUnavailable:
    return StoreUnavailable(f"GCS {what} failed: {type(exc).__name__}: {exc}")


def _map(exc: BaseException, key: str, what: str) -> StoreError:
    if isinstance(exc, gexc.NotFound):
        return ObjectNotFound(f"No such key: {key!r}")
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        return StoreUnavailable(f"GCS {what} of {key!r}: access denied")
    return _unavailable(exc, f"{what} of {key!r}")


# Every exception the google client (or requests under it) raises that we translate.
_SDK_ERRORS = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, *_TRANSPORT_ERRORS)


def _serves_generation(headers, blob: storage.Blob) -> bool:
    """Whether a media response carries the generation ``blob`` describes.

    GCS honours the generation in the media link (and names it in
    ``x-goog-generation``); emulators ignore it, so their responses are also
    checked against the size and the sha256 metadata we stat'ed.
    """
    generation = headers.get("x-goog-generation")
    if generation is not None and blob.generation is not None:
        return generation == str(blob.generation)
    sha = headers.get(f"x-goog-meta-{SHA256_META}")
    if sha is not None and sha != (blob.metadata or {}).get(SHA256_META):
        return False
    total = (headers.get("content-range") or "").rpartition("/")[2]
    return not (total.isdigit() and int(total) != int(blob.size or 0))


class GCSObjectReader(ChunkedReader):
    """One ranged media download of a pinned generation, streamed in chunks."""

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.end - self.start + 1
        if remaining <= 0 or self._source is None:
            return
        try:
            for chunk in self._source.iter_content(self._chunk_size):
                if not chunk:
                    continue
                remaining -= len(chunk)
                yield chunk
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, f"read of {self.info.key!r}") from None
        if remaining != 0:
            raise StoreUnavailable(f"GCS read of {self.info.key!r} ended {remaining} bytes off")


class GCSStore(PrefixedBucket):
    """Objects in ``bucket`` under ``prefix``; key ``tracks/a/b`` is ``{prefix}/tracks/a/b``."""

    def __init__(
        self,
        bucket: storage.Bucket,
        prefix: str = "",
        *,
        chunk_size: int = CHUNK_SIZE,
        retry: Retry | None = DEFAULT_RETRY.with_timeout(30.0),
        timeout: float | tuple[float, float] = (5.0, 60.0),
        signing_credentials=None,
    ) -> None:
        self._bucket = bucket
        self.bucket = bucket.name
        self.prefix = normalize_store_prefix(prefix)
        self._chunk_size = chunk_size
        self._retry = retry
        self._timeout = timeout
        self._signing_credentials = signing_credentials
        self.url = f"gs://{bucket.name}/{self.prefix}"

    @classmethod
    def from_url(cls, url: str) -> GCSStore:
        """Build a client from ``gs://bucket/prefix?project=..`` (ADC or the emulator)."""
        parts = urlsplit(url)
        if parts.scheme not in ("gs", "gcs"):
            raise StoreConfigError(f"not a gs:// URL: {url!r}")
        name = parts.netloc  # not .hostname, which would lowercase it
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", name):
            raise StoreConfigError(f"invalid GCS bucket name {name!r} in {url!r}")
        options = url_options(url, parts.query, _URL_OPTIONS, "GCS")
        project = options.get("project") or None
        try:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                client = storage.Client(
                    project=project or "emulator", credentials=AnonymousCredentials()
                )
            else:
                client = storage.Client(project=project)
        except (auth_exc.GoogleAuthError, OSError, ValueError) as exc:
            raise StoreConfigError(f"cannot build a GCS client for {url!r}: {exc}") from None
        return cls(client.bucket(name), parts.path)

    def __repr__(self) -> str:
        return f"GCSStore({self.url!r})"

    def _info(self, key: str, blob: storage.Blob) -> ObjectInfo:
        sha = recorded_sha256(blob.metadata)
        modified = blob.updated or datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=int(blob.size or 0),
            etag=content_etag(sha, blob.etag or f"{blob.generation}"),
            content_type=blob.content_type or content_type_for(key),
            modified=modified.astimezone(UTC),
            sha256=sha,
        )

    # -- writes ----------------------------------------------------------------

    def _upload(
        self, key: str, name: str, sha: str, content_type: str | None, upload
    ) -> ObjectInfo:
        blob = self._bucket.blob(name, chunk_size=UPLOAD_CHUNK_SIZE)
        blob.metadata = {SHA256_META: sha}
        try:
            # Replacing a whole object with given bytes is idempotent, so retrying is safe.
            upload(blob, content_type or content_type_for(key))
        except _SDK_ERRORS as exc:
            raise _map(exc, key, "upload") from None
        return self._info(key, blob)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        sha = hashlib.sha256(data).hexdigest()

        def upload(blob, ctype):
            blob.upload_from_string(
                data, content_type=ctype, retry=self._retry, timeout=self._timeout
            )

        return self._upload(key, name, sha, content_type, upload)

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        source, sha = upload_source(path)

        def upload(blob, ctype):
            blob.upload_from_filename(
                str(source), content_type=ctype, retry=self._retry, timeout=self._timeout
            )

        return self._upload(key, name, sha, content_type, upload)

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self._bucket.blob(name).delete(retry=self._retry, timeout=self._timeout)
        except gexc.NotFound:
            return
        except _SDK_ERRORS as exc:
            raise _map(exc, key, "delete") from None

    # -- reads -----------------------------------------------------------------

    def _blob(self, key: str, name: str) -> storage.Blob:
        try:
            blob = self._bucket.get_blob(name, retry=self._retry, timeout=self._timeout)
        except _SDK_ERRORS as exc:
            raise _map(exc, key, "stat") from None
        if blob is None:
            raise ObjectNotFound(f"No such key: {key!r}")
        return blob

    def stat(self, key: str) -> ObjectInfo:
        return self._info(key, self._blob(key, self._name(key)))

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> GCSObjectReader:
        name = self._name(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        # The generation we stat'ed may be replaced before its bytes are fetched: start over.
        for attempt in range(1, _OPEN_ATTEMPTS + 1):
            blob = self._blob(key, name)
            info = self._info(key, blob)
            first, last = resolve_range(info.size, start, end)
            if last < first:
                return GCSObjectReader(None, info, first, last, self._chunk_size)
            response = self._media_get(key, blob, first, last)
            if response is not None:
                return GCSObjectReader(response, info, first, last, self._chunk_size)
            if attempt == _OPEN_ATTEMPTS:
                break
            time.sleep(0.02 * attempt)  # let a burst of overwrites settle
        raise StoreUnavailable(f"GCS object {key!r} kept changing while being opened")

    def _media_get(self, key: str, blob: storage.Blob, first: int, last: int):
        """Start the ranged download of ``blob``'s generation; None when that generation is gone."""
        if blob.generation is None:
            raise StoreUnavailable(f"GCS returned no generation for {key!r}")
        # The JSON API's media download, on the client's own endpoint (emulator,
        # private endpoint), pinned to the generation whose metadata we hold.
        url = (
            f"{self._bucket.client.api_endpoint.rstrip('/')}/download/storage/v1"
            f"/b/{quote(self.bucket, safe='')}/o/{quote(blob.name, safe='')}"
            f"?alt=media&generation={blob.generation}"
        )
        session = self._bucket.client._http  # the client's authorized requests session
        try:
            response = session.get(
                url,
                headers={"Range": f"bytes={first}-{last}", "Accept-Encoding": "identity"},
                stream=True,
                timeout=self._timeout,
            )
        except _SDK_ERRORS as exc:
            raise _unavailable(exc, f"read of {key!r}") from None
        status = response.status_code
        if status in (200, 206):
            if not _serves_generation(response.headers, blob):
                response.close()
                return None
            if status == 206 or (first == 0 and last == int(blob.size or 0) - 1):
                return response
            response.close()
            raise StoreUnavailable(f"GCS ignored the Range of a read of {key!r}")
        response.close()
        if status == 404:
            return None
        if status == 416:
            raise RangeNotSatisfiable(
                f"range starts at {first}, object has {blob.size} bytes", int(blob.size or 0)
            )
        if status in (401, 403):
            raise StoreUnavailable(f"GCS read of {key!r}: access denied ({status})")
        raise StoreUnavailable(f"GCS read of {key!r} failed with HTTP {status}")

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        base = self._list_base()
        try:
            blobs = self._bucket.list_blobs(
                prefix=base + prefix, retry=self._retry, timeout=self._timeout
            )
            return self._listed_keys(blob.name for blob in blobs)
        except _SDK_ERRORS as exc:
            raise _map(exc, prefix, "list") from None

    def check(self) -> None:
        """Raise unless the bucket exists and answers (start-up and readiness probes)."""
        try:
            # Listing needs only object permissions, unlike reading the bucket's metadata.
            list(self._bucket.list_blobs(max_results=1, retry=self._retry, timeout=self._timeout))
        except gexc.NotFound:
            raise StoreConfigError(f"GCS bucket {self.bucket!r} does not exist") from None
        except _SDK_ERRORS as exc:
            raise _map(exc, "", "bucket check") from None

    # -- presigning --------------------------------------------------------------

    def presigned_url(self, key: str, expires_s: int, method: str = "GET", credentials=None) -> str:
        """A V4 signed URL for ``method`` on ``key``, valid ``expires_s`` seconds.

        Signing needs service-account credentials (``credentials``, the store's
        ``signing_credentials``, or the client's own when they can sign).
        """
        name = self._name(key)
        method = method.upper()
        if method not in PRESIGN_METHODS:
            raise ValueError(f"cannot presign {method!r}: use one of {list(PRESIGN_METHODS)}")
        if not 1 <= int(expires_s) <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_s must be 1..{MAX_PRESIGN_SECONDS}, not {expires_s!r}")
        creds = credentials or self._signing_credentials
        try:
            return self._bucket.blob(name).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=int(expires_s)),
                method=method,
                credentials=creds,
            )
        except (AttributeError, TypeError, auth_exc.GoogleAuthError) as exc:
            raise StoreConfigError(
                f"cannot presign {key!r}: GCS V4 signing needs service-account credentials ({exc})"
            ) from None
