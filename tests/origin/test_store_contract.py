"""ONE contract suite for every ObjectStore backend (origin/store.py).

Each test runs against LocalStore (tmp_path), S3Store (a moto server process)
and GCSStore (a gcp-storage-emulator process); none is skipped. Backend
specifics (presigning, URL parsing) live in test_s3.py / test_gcs.py.
"""

from __future__ import annotations

import hashlib
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from origin.errors import InvalidKey, ObjectNotFound, RangeNotSatisfiable, StoreUnavailable
from origin.gcs import GCSStore
from origin.keys import latest_key, manifest_key, rendition_key
from origin.local import LocalStore
from origin.s3 import S3Store
from origin.store import ObjectReader, ObjectStore
from tests.origin.backends import unreachable_store
from tests.origin.conftest import S3
from tests.support.http_stub import QuietHandler, StubServer

V1 = "0123456789abcdef"
V2 = "fedcba9876543210"
KEY = rendition_key("song", V1, 160)
DATA = bytes(range(256)) * 4  # 1024 distinct-ish bytes: a shifted read cannot pass

BAD_KEYS = [
    "tracks/../../etc/passwd",
    "tracks/song/../../../etc/passwd",
    "/etc/passwd",
    "/tracks/song/latest.json",
    "tracks/song/latest.json/",
    "tracks//latest.json",
    "tracks/so\x00ng/latest.json",
    "tracks/song\n/latest.json",
    "tracks/song\x1b/latest.json",
    "tracks\\song\\latest.json",
    "tracks/song\\..\\latest.json",
    "tracks/%2e%2e/latest.json",
    "tracks/song/0123456789abcdef/97.ogg",
    "tracks/song/0123456789ABCDEF/96.ogg",
    "TRACKS/song/latest.json",
    "etc/passwd",
    "",
]
BAD_PREFIXES = ["tracks/so", "tracks/../", "/tracks/", "tracks/song", "..", "tracks/song/x/"]


def read_all(reader: ObjectReader) -> bytes:
    with reader:
        return b"".join(reader)


# -- put / get / stat -------------------------------------------------------------


def test_put_bytes_then_get_bytes(store: ObjectStore):
    info = store.put_bytes(KEY, DATA)
    assert store.get_bytes(KEY) == DATA
    assert info.key == KEY
    assert info.size == len(DATA)
    assert info.sha256 == hashlib.sha256(DATA).hexdigest()


def test_put_file_then_get_bytes(store: ObjectStore, tmp_path):
    source = tmp_path / "upload.ogg"
    source.write_bytes(DATA * 3)
    info = store.put_file(KEY, source)
    assert store.get_bytes(KEY) == DATA * 3
    assert info.size == len(DATA) * 3
    assert info.sha256 == hashlib.sha256(DATA * 3).hexdigest()


def test_put_file_of_a_missing_path_raises_and_stores_nothing(store: ObjectStore, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.put_file(KEY, tmp_path / "nope.ogg")
    assert not store.exists(KEY)


def test_stat_fields(store: ObjectStore):
    store.put_bytes(KEY, DATA)
    info = store.stat(KEY)
    assert info.key == KEY
    assert info.size == len(DATA)
    assert info.content_type == "audio/ogg"  # from the key's extension
    assert info.sha256 == hashlib.sha256(DATA).hexdigest()
    assert info.etag.startswith('"') and info.etag.endswith('"') and len(info.etag) > 2
    assert info.modified.tzinfo is not None
    assert abs(datetime.now(UTC) - info.modified) < timedelta(hours=1)


def test_explicit_content_type_is_kept(store: ObjectStore, tmp_path):
    # No parameters (e.g. "; charset=utf-8"): the GCS emulator drops them, real GCS keeps them.
    store.put_bytes(latest_key("song"), b"{}", content_type="text/plain")
    assert store.stat(latest_key("song")).content_type == "text/plain"
    source = tmp_path / "x.ogg"
    source.write_bytes(b"ogg")
    store.put_file(KEY, source, content_type="application/octet-stream")
    assert store.stat(KEY).content_type == "application/octet-stream"


def test_etag_follows_the_content(store: ObjectStore):
    first = store.put_bytes(KEY, DATA).etag
    second = store.put_bytes(KEY, DATA[::-1]).etag
    third = store.put_bytes(KEY, DATA).etag
    assert first != second
    assert third == first  # content-derived: equal bytes, equal ETag, in every backend
    assert store.stat(KEY).etag == first


def test_same_bytes_get_the_same_etag_in_every_backend(store: ObjectStore, tmp_path):
    reference = LocalStore(tmp_path / "reference").put_bytes(KEY, DATA)
    assert store.put_bytes(KEY, DATA).etag == reference.etag


def test_exists(store: ObjectStore):
    assert not store.exists(KEY)
    store.put_bytes(KEY, DATA)
    assert store.exists(KEY)


# -- listing ------------------------------------------------------------------------


def test_list_by_prefix_is_sorted_and_matches_whole_segments(store: ObjectStore):
    keys = [
        latest_key("ab"),
        rendition_key("ab", V2, 96),
        rendition_key("ab", V1, 320),
        rendition_key("ab", V1, 96),
        manifest_key("ab", V1),
        latest_key("abc"),  # shares the first letters of "ab": must not leak into its listing
        rendition_key("abc", V1, 96),
    ]
    for key in keys:
        store.put_bytes(key, b"x")
    assert store.list("") == sorted(keys)
    assert store.list("tracks/") == sorted(keys)
    assert store.list("tracks/ab/") == sorted(k for k in keys if k.startswith("tracks/ab/"))
    assert store.list(f"tracks/ab/{V1}/") == [
        rendition_key("ab", V1, 320),
        rendition_key("ab", V1, 96),
        manifest_key("ab", V1),
    ]
    assert store.list("tracks/nobody/") == []


def test_list_of_an_empty_store_is_empty(store: ObjectStore):
    assert store.list() == []


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_list_refuses_prefixes_outside_the_layout(store: ObjectStore, prefix):
    with pytest.raises(InvalidKey):
        store.list(prefix)


# -- delete ------------------------------------------------------------------------------


def test_delete_removes_and_is_idempotent(store: ObjectStore):
    store.put_bytes(KEY, DATA)
    store.delete(KEY)
    assert not store.exists(KEY)
    store.delete(KEY)  # deleting a missing key is not an error
    assert store.list() == []


# -- not found ----------------------------------------------------------------------------


def test_missing_object_maps_to_object_not_found_everywhere(store: ObjectStore):
    missing = latest_key("ghost")
    with pytest.raises(ObjectNotFound):
        store.stat(missing)
    with pytest.raises(ObjectNotFound):
        store.get_bytes(missing)
    with pytest.raises(ObjectNotFound):
        store.open_range(missing)  # eagerly, before iteration
    with pytest.raises(ObjectNotFound):
        store.open_range(missing, 10, 20)
    assert store.exists(missing) is False
    store.delete(missing)


def test_object_not_found_is_a_file_not_found_error(store: ObjectStore):
    with pytest.raises(FileNotFoundError):
        store.get_bytes(latest_key("ghost"))


# -- key validation before any I/O -----------------------------------------------------


def _every_method(store, key: str, tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    calls = [
        lambda: store.put_bytes(key, b"payload"),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.open_range(key),
        lambda: store.open_range(key, 0, 1),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]
    if hasattr(store, "presigned_url"):
        calls.append(lambda: store.presigned_url(key, 60))
    return calls


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_bad_keys_are_refused_by_every_method(store: ObjectStore, bad_key, tmp_path):
    for call in _every_method(store, bad_key, tmp_path):
        with pytest.raises(InvalidKey):
            call()
    assert store.list() == []  # nothing was written anywhere


@pytest.mark.parametrize("kind", ["local", S3, "gcs"])
def test_key_validation_happens_before_any_io(kind, tmp_path):
    # Against an unreachable backend, I/O would raise StoreUnavailable (or, for a
    # local store, recreate its root): InvalidKey proves nothing was attempted.
    store = unreachable_store(kind, tmp_path)
    for bad_key in ("tracks/../../etc/passwd", "/etc/passwd", "tracks/a\x00/latest.json"):
        for call in _every_method(store, bad_key, tmp_path):
            with pytest.raises(InvalidKey):
                call()
    with pytest.raises(InvalidKey):
        store.list("../")
    if kind == "local":
        assert not (tmp_path / "gone").exists()


# -- unavailable backends -----------------------------------------------------------------


class _Failing(QuietHandler):
    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" at once, as S3 does

    def _fail(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_body(503, b'{"error": {"code": 503, "message": "backend down"}}')

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _fail


@pytest.fixture
def failing_endpoint():
    """A real HTTP server answering every request with 503."""
    with StubServer(_Failing) as server:
        yield server.url


def _remote_store_at(kind: str, endpoint: str):
    if kind == "s3":
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
            config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
        )
        return S3Store(client, "bucket")
    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )
    return GCSStore(client.bucket("bucket"), retry=None, timeout=(2, 5))


def _assert_every_call_unavailable(store, tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    calls = [
        lambda: store.put_bytes(KEY, b"payload"),
        lambda: store.put_file(KEY, source),
        lambda: store.get_bytes(KEY),
        lambda: store.open_range(KEY, 0, 9),
        lambda: store.stat(KEY),
        lambda: store.exists(KEY),
        lambda: store.delete(KEY),
        lambda: store.list("tracks/"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call()


@pytest.mark.parametrize("kind", [S3, "gcs"])
def test_unreachable_backend_maps_to_store_unavailable(kind, tmp_path):
    _assert_every_call_unavailable(unreachable_store(kind, tmp_path), tmp_path)


@pytest.mark.parametrize("kind", [S3, "gcs"])
def test_server_errors_map_to_store_unavailable(kind, failing_endpoint, tmp_path):
    _assert_every_call_unavailable(_remote_store_at(kind, failing_endpoint), tmp_path)


# -- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DATA[:1]),  # first byte
        (1023, 1023, DATA[-1:]),  # last byte
        (1000, None, DATA[1000:]),  # open-ended
        (1000, 5000, DATA[1000:]),  # end past the end is clamped
        (0, None, DATA),
        (0, 1023, DATA),
        (100, 199, DATA[100:200]),
    ],
)
def test_range_edges(store: ObjectStore, start, end, expected):
    store.put_bytes(KEY, DATA)
    reader = store.open_range(KEY, start, end)
    assert reader.start == start
    assert reader.end == start + len(expected) - 1
    assert reader.info.size == len(DATA)
    assert reader.info.sha256 == hashlib.sha256(DATA).hexdigest()
    assert read_all(reader) == expected


@pytest.mark.parametrize(("start", "end"), [(1024, None), (1024, 2000), (5000, 6000)])
def test_range_starting_past_the_end_is_not_satisfiable(store: ObjectStore, start, end):
    store.put_bytes(KEY, DATA)
    with pytest.raises(RangeNotSatisfiable) as caught:
        store.open_range(KEY, start, end)  # eagerly, before iteration
    assert caught.value.size == len(DATA)


def test_empty_object(store: ObjectStore):
    store.put_bytes(latest_key("song"), b"")
    assert store.get_bytes(latest_key("song")) == b""
    assert store.stat(latest_key("song")).size == 0
    reader = store.open_range(latest_key("song"))
    assert (reader.start, reader.end, reader.info.size) == (0, -1, 0)
    assert read_all(reader) == b""
    assert read_all(store.open_range(latest_key("song"), 0, 10)) == b""
    with pytest.raises(RangeNotSatisfiable) as caught:
        store.open_range(latest_key("song"), 1)
    assert caught.value.size == 0


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5)])
def test_invalid_range_arguments_are_refused(store: ObjectStore, start, end):
    store.put_bytes(KEY, DATA)
    with pytest.raises(ValueError):
        store.open_range(KEY, start, end)


# -- atomicity --------------------------------------------------------------------------


def test_readers_never_see_a_mix_or_a_prefix_while_a_writer_replaces(store: ObjectStore):
    # Different sizes and fill bytes: a prefix has the wrong length, a mix holds both bytes.
    versions = [b"A" * 300_000, b"B" * 700_000]
    shas = {hashlib.sha256(v).hexdigest() for v in versions}
    store.put_bytes(KEY, versions[0])
    done = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            for i in range(16):
                store.put_bytes(KEY, versions[(i + 1) % 2])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    def read_once() -> None:
        whole = store.get_bytes(KEY)
        assert whole in versions, f"torn read of {len(whole)} bytes"
        reader = store.open_range(KEY)
        streamed = read_all(reader)
        assert streamed in versions, f"torn streamed read of {len(streamed)} bytes"
        # The metadata a reader reports belongs to the bytes it delivers.
        assert reader.info.size == len(streamed)
        assert reader.info.sha256 == hashlib.sha256(streamed).hexdigest()
        assert reader.info.sha256 in shas

    thread = threading.Thread(target=writer)
    thread.start()
    reads = refused = 0
    try:
        while not done.is_set() or reads < 4:
            try:
                read_once()
                reads += 1
            except StoreUnavailable:
                # Allowed ("nothing"): GCS pins a read to one generation and gives up
                # after a few retries when every generation it sees is overwritten.
                refused += 1
    finally:
        thread.join()
    assert not errors
    assert reads >= 4
    read_once()  # once the writer stops, every backend reads again
    assert store.get_bytes(KEY) == versions[16 % 2]


def test_a_read_in_progress_keeps_its_version_when_the_key_is_replaced(store: ObjectStore):
    old, new = b"o" * (1024 * 1024), b"n" * (1024 * 1024 + 7)
    store.put_bytes(KEY, old)
    with store.open_range(KEY) as reader:
        chunks = iter(reader)
        first = next(chunks)
        store.put_bytes(KEY, new)
        rest = b"".join(chunks)
    assert first + rest == old
    assert store.get_bytes(KEY) == new


# -- large objects stream with bounded memory --------------------------------------------

LARGE_BLOCKS = 50
BLOCK = 1024 * 1024


def _write_large_file(path) -> str:
    """50 MiB made of one random MiB repeated, each block stamped with its index."""
    import os

    base = os.urandom(BLOCK - 8)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(LARGE_BLOCKS):
            block = i.to_bytes(8, "big") + base
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def test_large_object_round_trip_streams_with_bounded_memory(store: ObjectStore, tmp_path):
    source = tmp_path / "large.ogg"
    expected_sha = _write_large_file(source)
    size = LARGE_BLOCKS * BLOCK

    tracemalloc.start()
    try:
        info = store.put_file(KEY, source)
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()

        digest = hashlib.sha256()
        total = 0
        largest_chunk = 0
        with store.open_range(KEY) as reader:
            for chunk in reader:
                digest.update(chunk)
                total += len(chunk)
                largest_chunk = max(largest_chunk, len(chunk))
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert info.size == size and info.sha256 == expected_sha
    assert total == size
    assert digest.hexdigest() == expected_sha
    # Far below the object's 50 MiB: the read holds a few chunks, never the object.
    assert largest_chunk <= 1024 * 1024
    assert read_peak < 8 * 1024 * 1024, f"read peak {read_peak} bytes"
    assert upload_peak < 24 * 1024 * 1024, f"upload peak {upload_peak} bytes"
    store.delete(KEY)
