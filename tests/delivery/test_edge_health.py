"""Edge health is probed once per interval for the whole deployment and read by every worker."""

from __future__ import annotations

import uuid

import pytest

from delivery.edge_health import EdgeHealth, probe_edge
from delivery.edge_routing import choose_edge, parse_edges
from tests.support.clock import FakeClock
from tests.support.http_stub import QuietHandler, StubServer


class Probes:
    """A fake network: which edge URLs answer, and every probe made."""

    def __init__(self, down: set[str] | None = None) -> None:
        self.down = down or set()
        self.calls: list[str] = []

    def __call__(self, url: str, timeout_s: float) -> bool:
        self.calls.append(url)
        return not any(url.startswith(d) for d in self.down)


def edges():
    # Unique URLs: the database lives as long as the test module.
    tag = uuid.uuid4().hex[:8]
    return parse_edges(",".join(f"http://{tag}-{n}:8080" for n in "abc"))


def test_one_probe_per_edge_and_interval_across_workers(database):
    clock, probes, three = FakeClock(1_800_000_000.0), Probes(), edges()
    workers = [
        EdgeHealth(database, three, interval_s=2, probe=probes, clock=clock) for _ in range(4)
    ]
    for w in workers:
        w.refresh()
    assert sorted(probes.calls) == sorted(e.url + "/readyz" for e in three)
    clock.now += 1  # within the interval: nobody probes again
    for w in workers:
        w.refresh()
    assert len(probes.calls) == 3
    clock.now += 1.5
    for w in workers:
        w.refresh()
    assert len(probes.calls) == 6


def test_a_down_edge_is_seen_by_every_worker_and_routed_around(database):
    clock, three = FakeClock(1_800_000_000.0), edges()
    gone = three[1].url
    prober = EdgeHealth(database, three, interval_s=2, probe=Probes({gone}), clock=clock)
    reader = EdgeHealth(database, three, interval_s=2, probe=Probes(), clock=clock)
    prober.refresh()
    reader.refresh()  # probes nothing (the rows are fresh), reads the shared result
    assert not reader.is_up(gone) and reader.is_up(three[0].url)
    keys = [f"tracks/t{i}/0123456789abcdef/96.ogg" for i in range(200)]
    assert gone not in {choose_edge(k, three, None, reader.is_up).url for k in keys}
    # It comes back: the next probe after the interval says so, everywhere.
    clock.now += 3
    EdgeHealth(database, three, interval_s=2, probe=Probes(), clock=clock).refresh()
    reader.refresh()
    assert reader.is_up(gone)


def test_one_edge_or_no_path_means_no_probing(database):
    probes = Probes()
    single = EdgeHealth(database, edges()[:1], probe=probes)
    off = EdgeHealth(database, edges(), path="", probe=probes)
    for h in (single, off):
        h.start()
        h.refresh()
        h.stop()
    assert probes.calls == [] and single.is_up("http://anything")


@pytest.fixture
def answering_server():
    statuses = {"/readyz": 200, "/broken/readyz": 503}

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(statuses.get(self.path, 404))
            self.end_headers()

    with StubServer(Handler) as server:
        yield server.url


def test_the_real_probe(answering_server):
    assert probe_edge(answering_server + "/readyz", 2)
    assert probe_edge(answering_server + "/elsewhere", 2)  # 404: something answers
    assert not probe_edge(answering_server + "/broken/readyz", 2)  # 503: cannot serve
    assert not probe_edge("http://127.0.0.1:9/readyz", 0.5)  # nothing listens
