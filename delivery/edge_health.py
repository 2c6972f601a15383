"""Which edges are up, probed once per interval for the whole deployment.

Every worker of every host needs the same view (or rendezvous routing would
send one object to two edges), and probing each edge from every worker would
multiply the probes by the worker count. So the view lives in delivery's
database: each edge has a row (``edge_health``), and whichever worker first
finds a row older than the interval claims it with one conditional UPDATE,
probes the edge (``GET {edge}{DELIVERY_EDGE_HEALTH_PATH}``: any answer below 500
is "up"; a connection error, a timeout or a 5xx is "down") and writes the
result. Every worker re-reads the table each interval. A worker that dies while
probing only delays that edge's next check by one interval.

An edge no probe has seen yet counts as up, and so does every edge when probing
is off (an empty path, e.g. for CDNs without a health URL).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import httpx
from prometheus_client import CollectorRegistry, Gauge

from delivery.db import Database, DatabaseError
from delivery.edge_routing import Edge

log = logging.getLogger("delivery.edge_health")


def probe_edge(url: str, timeout_s: float) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s).status_code < 500
    except httpx.HTTPError:
        return False


class EdgeHealth:
    def __init__(
        self,
        db: Database,
        edges: Sequence[Edge],
        *,
        path: str = "/readyz",
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
        registry: CollectorRegistry | None = None,
        probe: Callable[[str, float], bool] = probe_edge,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.edges = tuple(edges)
        self._path = path
        self._interval = interval_s
        self._timeout = timeout_s
        self._probe = probe
        self._clock = clock
        self._me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._up: dict[str, bool] = {}
        self._rows_made = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gauge = (
            Gauge(
                "delivery_edge_up",
                "1 when the edge answered its last probe",
                ["edge"],
                registry=registry,
                # Shared state (edge_health rows): with several workers, the latest reading.
                multiprocess_mode="livemostrecent",
            )  # fmt: skip
            if registry is not None
            else None
        )

    @property
    def probing(self) -> bool:
        return bool(self._path) and len(self.edges) > 1

    def is_up(self, url: str) -> bool:
        return self._up.get(url, True)

    def refresh(self) -> None:
        """One round: probe the edges whose turn it is, then read everyone's results."""
        if not self.probing:
            return
        now = self._clock()
        if not self._rows_made:  # once per process: every later round only claims and reads
            with self._db.transaction() as tx:
                for edge in self.edges:
                    tx.execute(
                        "INSERT INTO edge_health (edge_url, up, checked_at, checked_by) "
                        "VALUES (:u, :up, 0, '') ON CONFLICT (edge_url) DO NOTHING",
                        {"u": edge.url, "up": True},
                    )
            self._rows_made = True
        for edge in self.edges:
            with self._db.transaction() as tx:
                claimed = tx.execute(
                    "UPDATE edge_health SET checked_at = :now, checked_by = :me "
                    "WHERE edge_url = :u AND checked_at <= :due",
                    {"u": edge.url, "now": now, "me": self._me, "due": now - self._interval},
                )
            if claimed != 1:
                continue
            up = self._probe(edge.url + self._path, self._timeout)
            with self._db.transaction() as tx:
                tx.execute(
                    "UPDATE edge_health SET up = :up WHERE edge_url = :u",
                    {"u": edge.url, "up": up},
                )
            if not up:
                log.warning("edge %s did not answer its health probe", edge.url)
        with self._db.transaction(write=False) as tx:
            rows = tx.fetchall("SELECT edge_url, up FROM edge_health")
        known = {e.url for e in self.edges}
        self._up = {r["edge_url"]: bool(r["up"]) for r in rows if r["edge_url"] in known}
        if self._gauge is not None:
            for url in known:
                self._gauge.labels(url).set(1 if self.is_up(url) else 0)

    def start(self) -> None:
        if not self.probing or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="edge-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout * len(self.edges) + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except DatabaseError as exc:  # keep the last view; the next round tries again
                log.warning("edge health not refreshed: %s", exc)
            self._stop.wait(self._interval / 2)
