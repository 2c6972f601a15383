"""common.metrics: the multiprocess directory's life, flushing plain ints, rendering."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from common.metrics import ENV, Flusher, multiprocess_dir, multiprocess_metrics, render
from tests.support.servers import REPO


@pytest.fixture(autouse=True)
def no_operator_directory(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def test_this_test_process_renders_its_own_registry():
    assert multiprocess_dir() is None
    registry = CollectorRegistry()
    Counter("unit_things", "Things", registry=registry).inc(3)
    assert b"unit_things_total 3.0" in render(registry)


def test_one_worker_keeps_the_per_process_registry():
    with multiprocess_metrics("unit", 1) as directory:
        assert directory is None and ENV not in os.environ


def test_several_workers_share_a_fresh_private_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with multiprocess_metrics("unit", 3) as directory:
        assert directory is not None and os.environ[ENV] == directory
        path = Path(directory)
        assert path.parent == tmp_path and path.name.startswith("audiocdn-unit-metrics-")
        assert list(path.iterdir()) == []
        (path / "counter_1.db").write_bytes(b"x")
    assert ENV not in os.environ and not path.exists()


def test_an_operators_directory_is_emptied_of_earlier_runs_and_kept(tmp_path, monkeypatch):
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"stale")
    (chosen / "gauge_livesum_123.db").write_bytes(b"stale")
    (chosen / "README").write_text("not ours")
    monkeypatch.setenv(ENV, str(chosen))
    with multiprocess_metrics("unit", 1) as directory:  # honoured even with one worker
        assert directory == str(chosen)
        assert sorted(p.name for p in chosen.iterdir()) == ["README"]
    assert chosen.is_dir() and os.environ[ENV] == str(chosen)


def test_flusher_adds_what_plain_ints_gained_and_sets_gauges_that_moved():
    registry = CollectorRegistry()
    counter = Counter("unit_events", "Events", ["kind"], registry=registry)
    plain = Counter("unit_bytes", "Bytes", registry=registry)
    gauge = Gauge("unit_open", "Open", registry=registry)
    flusher = Flusher()
    counts = {"a": 2}
    flusher.counts(counter, counts)
    flusher.add(plain, 10)
    flusher.set(gauge, 4)
    counts["a"] += 3
    counts["b"] = 1
    flusher.counts(counter, counts)
    flusher.add(plain, 10)  # no gain: nothing added
    flusher.add(plain, 15)
    flusher.set(gauge, 1)
    value = registry.get_sample_value
    assert value("unit_events_total", {"kind": "a"}) == 5
    assert value("unit_events_total", {"kind": "b"}) == 1
    assert value("unit_bytes_total") == 15 and value("unit_open") == 1


SCRIPT = """
import os, sys
from common.connections import connection_stats
from common.metrics import multiprocess_dir, render
from prometheus_client import CollectorRegistry

assert multiprocess_dir() == os.environ["PROMETHEUS_MULTIPROC_DIR"]
stats = connection_stats("unit")
stats.open, stats.rejected = 2, 4
sys.stdout.write(render(CollectorRegistry()).decode())
"""


def test_multiprocess_render_merges_the_files_and_forgets_dead_workers(tmp_path):
    """In a real process whose prometheus_client was imported with the directory set:
    counters of earlier workers add up, live gauges of dead ones are dropped."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # a worker that is gone
    dead.wait()
    for typ, name, value in (
        ("counter", "unit_connections_rejected", 3.0),
        ("gauge_livesum", "unit_connections_open", 7.0),
    ):
        earlier = MmapedDict(str(tmp_path / f"{typ}_{dead.pid}.db"))
        sample = name + ("_total" if typ == "counter" else "")
        doc = (
            "Connections refused (503) because the worker had max_connections open"
            if typ == "counter"
            else "Client connections open (the sum over live worker processes)"
        )
        earlier.write_value(mmap_key(name, sample, [], [], doc), value, 0.0)
        earlier.close()
    env = {**os.environ, ENV: str(tmp_path), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "unit_connections_rejected_total 7.0" in out  # 3 from the dead worker + 4
    assert "unit_connections_open 2.0" in out  # the dead worker's 7 no longer counts
    assert not (tmp_path / f"gauge_livesum_{dead.pid}.db").exists()
