"""Atomic publication: renditions, manifest, latest — and invisibility when anything fails."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from encoder import PublishError, ingest
from encoder.profile import get_profile, version_for
from origin.errors import StoreUnavailable
from origin.keys import latest_key, manifest_key
from origin.manifest import Latest
from origin.store import open_store, sha256_file

pytestmark = pytest.mark.slow  # publishes killed mid-way in child processes; moto

ROOT = Path(__file__).resolve().parents[2]


class FaultyStore:
    """The real store, with a fault injected right after the Nth rendition upload."""

    def __init__(self, inner, fail_after: int) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.uploads = 0

    def put_file(self, key, path, content_type=None):
        info = self.inner.put_file(key, path, content_type)
        self.uploads += 1
        if self.uploads == self.fail_after:
            raise StoreUnavailable("injected fault: connection reset")
        return info

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path):
    if request.param == "local":
        return open_store((tmp_path / "origin").as_uri())
    return open_store(request.getfixturevalue("s3_store_url"))


def test_publish_order_and_invisible_failure(media, any_store, settings, work_dir):
    old = ingest(media["music.flac"], "t1", any_store, settings=settings)
    latest_before = any_store.get_bytes(latest_key("t1"))
    faulty = FaultyStore(any_store, fail_after=2)

    with pytest.raises(PublishError, match="nothing was published"):
        ingest(media["other_master.flac"], "t1", faulty, settings=settings, replace=True)

    new_version = version_for(
        sha256_file(media["other_master.flac"]), get_profile("quality", settings.engine)
    )
    assert faulty.uploads == 2
    assert not any_store.exists(manifest_key("t1", new_version))  # invisible: no manifest
    assert any_store.get_bytes(latest_key("t1")) == latest_before  # previous latest intact
    assert Latest.from_json(latest_before).version == old.version
    assert list(work_dir.iterdir()) == []  # temp files cleaned up

    # A retry publishes the version whole, over the invisible leftovers.
    retry = ingest(media["other_master.flac"], "t1", any_store, settings=settings, replace=True)
    assert retry.status == "published" and retry.version == new_version
    assert Latest.from_json(any_store.get_bytes(latest_key("t1"))).version == new_version


def test_local_store_leaves_no_temporary_files(media, tmp_path, settings):
    root = tmp_path / "origin"
    store = open_store(root.as_uri())
    with pytest.raises(PublishError):
        ingest(media["mono.flac"], "t1", FaultyStore(store, 2), settings=settings)
    assert [p.name for p in root.rglob("*") if p.name.startswith(".")] == []


KILLER = textwrap.dedent(
    """
    import os, signal, sys, time
    from origin.local import LocalStore

    real_put_file = LocalStore.put_file
    uploads = 0

    def put_file(self, key, path, content_type=None):
        global uploads
        info = real_put_file(self, key, path, content_type)
        uploads += 1
        if uploads == 2:  # killed right after the 2nd rendition reached the store
            os.kill(os.getpid(), int(os.environ["KILL_SIGNAL"]))
            time.sleep(30)
        return info

    LocalStore.put_file = put_file
    from encoder.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _ingest_killed_at_second_upload(
    source, store_url, work_dir, sig
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KILL_SIGNAL": str(int(sig)),
        "ENCODER_WORK_DIR": str(work_dir),
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-c", KILLER, "ingest", str(source), "--track-id", "t1", "--replace"]
    return subprocess.run(
        [*argv, "--store", store_url], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_publish_stays_invisible(media, tmp_path, settings, work_dir, sig):
    root = tmp_path / "origin"
    store = open_store(root.as_uri())
    old = ingest(media["music.flac"], "t1", store, settings=settings)
    latest_before = store.get_bytes(latest_key("t1"))

    done = _ingest_killed_at_second_upload(media["other_master.flac"], root.as_uri(), work_dir, sig)

    new_version = version_for(
        sha256_file(media["other_master.flac"]), get_profile("quality", settings.engine)
    )
    assert done.stdout == ""  # no summary: nothing was published
    assert len(store.list(f"tracks/t1/{new_version}/")) == 2  # two orphans, no manifest
    assert not store.exists(manifest_key("t1", new_version))
    assert store.get_bytes(latest_key("t1")) == latest_before
    assert Latest.from_json(latest_before).version == old.version
    assert [p.name for p in root.rglob("*") if p.name.startswith(".")] == []
    leftovers = list(work_dir.iterdir())
    if sig == signal.SIGTERM:
        assert done.returncode == 128 + signal.SIGTERM
        assert done.stderr.strip().splitlines()[-1] == "encoder: error: terminated"
        assert leftovers == []  # cleaned up on the way out
    else:
        assert done.returncode == -signal.SIGKILL
        assert len(leftovers) == 1  # SIGKILL cannot be caught: the next ingest sweeps it
        ingest(media["mono.flac"], "t2", store, settings=settings)
        assert list(work_dir.iterdir()) == []
