"""Object-affine edge routing: which edge a signed URL points at.

With several edges (``DELIVERY_EDGE_URLS``), each object should live in ONE
edge's cache, not in every edge's: the URL for an object names the edge with
the highest rendezvous (highest-random-weight) score for that object among the
healthy edges of the client's region. Every delivery worker and host computes
the same answer without talking to the others; losing an edge moves only the
objects it had (each to its next-best edge), and adding one takes about 1/N of
the objects. Clients without a region, or whose region has no healthy edge,
are routed over every healthy edge; with no healthy edge at all, over every
edge (fail open: a probe can be wrong, a URL that is never handed out cannot
recover).

Entries are ``[region=]url``, comma-separated::

    DELIVERY_EDGE_URLS=eu=https://edge-eu-1.example,eu=https://edge-eu-2.example,us=https://edge-us-1.example

Pure functions here; health comes from :mod:`delivery.edge_health`, and
:class:`delivery.signing.routed.RoutedSigner` puts them behind the signer port.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_REGION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_REGION = 32


@dataclass(frozen=True, slots=True)
class Edge:
    url: str
    region: str = ""  # "" = serves every region


def parse_edges(text: str) -> tuple[Edge, ...]:
    """``[region=]url`` entries, comma-separated; a ValueError names the bad entry."""
    edges: list[Edge] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        region, sep, url = entry.partition("=")
        if not sep or "://" in region:  # no region: the "=" (if any) is in the URL
            region, url = "", entry
        elif not region.strip():
            raise ValueError(f"edge entry {entry[:80]!r}: no region before '='")
        region = region.strip().lower()
        url = url.strip().rstrip("/")
        if len(region) > MAX_REGION or not set(region) <= _REGION_CHARS:
            raise ValueError(
                f"edge entry {entry[:80]!r}: a region is up to {MAX_REGION} letters, "
                "digits, - and _"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"edge entry {entry[:80]!r}: {url!r} is not an http(s) base URL")
        if parts.query or parts.fragment:
            raise ValueError(f"edge entry {entry[:80]!r}: no query or fragment in a base URL")
        if any(e.url == url for e in edges):
            raise ValueError(f"edge {url!r} is listed twice")
        edges.append(Edge(url, region))
    return tuple(edges)


def client_region(headers: Mapping[str, str], header: str) -> str | None:
    """The region the load balancer put in ``header``; None when off, absent or malformed
    (a malformed value is routed like no region, never refused: the client did not set it)."""
    if not header:
        return None
    value = headers.get(header, "").strip().lower()
    if not value or len(value) > MAX_REGION or not set(value) <= _REGION_CHARS:
        return None
    return value


def score(edge_url: str, key: str) -> int:
    """The rendezvous weight of ``edge_url`` for object ``key`` (stable across processes)."""
    digest = hashlib.blake2b(f"{edge_url}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def choose_edge(
    key: str, edges: Sequence[Edge], region: str | None, healthy: Callable[[str], bool]
) -> Edge:
    """The edge serving ``key`` for a client in ``region`` (see the module docstring)."""
    if not edges:
        raise ValueError("no edges configured")
    up = [e for e in edges if healthy(e.url)]
    local = [e for e in up if region and e.region == region]
    candidates: Iterable[Edge] = local or up or edges
    return max(candidates, key=lambda e: score(e.url, key))
