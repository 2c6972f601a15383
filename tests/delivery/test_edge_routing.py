"""Object-affine edge routing: rendezvous hashing over the healthy edges of a region."""

from __future__ import annotations

from collections import Counter

import pytest

from delivery.edge_routing import Edge, choose_edge, parse_edges
from delivery.signing.port import UrlRequest
from delivery.signing.routed import RoutedSigner

THREE = parse_edges("http://edge-a:8080,http://edge-b:8080,http://edge-c:8080")
KEYS = [f"tracks/track-{i:04d}/0123456789abcdef/160.ogg" for i in range(1000)]


def everyone(url: str) -> bool:
    return True


def test_a_thousand_objects_spread_within_15_percent_of_even():
    counts = Counter(choose_edge(k, THREE, None, everyone).url for k in KEYS)
    assert set(counts) == {e.url for e in THREE}
    for n in counts.values():
        assert abs(n - 1000 / 3) <= 0.15 * 1000 / 3, counts


def test_removing_an_edge_moves_only_its_share():
    before = {k: choose_edge(k, THREE, None, everyone).url for k in KEYS}
    gone = "http://edge-b:8080"
    after = {k: choose_edge(k, THREE, None, lambda url: url != gone).url for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == gone for k in moved)
    assert gone not in after.values()
    # Adding it back restores every object to where it was.
    assert {k: choose_edge(k, THREE, None, everyone).url for k in KEYS} == before


def test_the_same_answer_everywhere_and_every_time():
    again = parse_edges("http://edge-c:8080, http://edge-a:8080/ ,http://edge-b:8080")
    for k in KEYS[:100]:
        assert choose_edge(k, THREE, None, everyone) == choose_edge(k, again, None, everyone)


def test_a_region_keeps_its_clients_and_falls_back_when_empty():
    edges = parse_edges("eu=http://eu-1,eu=http://eu-2,us=http://us-1")
    eu = {choose_edge(k, edges, "eu", everyone).url for k in KEYS[:200]}
    assert eu == {"http://eu-1", "http://eu-2"}
    assert {choose_edge(k, edges, "us", everyone).url for k in KEYS[:50]} == {"http://us-1"}
    # us-1 down: us clients go to the healthy edges of any region.
    down = {choose_edge(k, edges, "us", lambda u: u != "http://us-1").url for k in KEYS[:200]}
    assert down == {"http://eu-1", "http://eu-2"}
    # An unknown region or none: every healthy edge.
    anywhere = {choose_edge(k, edges, "ap", everyone).url for k in KEYS[:300]}
    assert anywhere == {"http://eu-1", "http://eu-2", "http://us-1"}


def test_no_healthy_edge_fails_open():
    assert choose_edge(KEYS[0], THREE, None, lambda url: False) in THREE


@pytest.mark.parametrize(
    "text",
    [
        "ftp://edge",
        "eu=not-a-url",
        "e u=http://edge",
        "http://edge?x=1",
        "http://edge,http://edge/",
        "=http://edge",
        " =http://edge",
        f"{'r' * 33}=http://edge",
    ],
)
def test_bad_entries_are_refused_by_name(text):
    with pytest.raises(ValueError, match="edge"):
        parse_edges(text)


def test_entries_parse_with_and_without_regions():
    assert parse_edges(" EU=https://e1/base/ , https://e2 ") == (
        Edge("https://e1/base", "eu"),
        Edge("https://e2", ""),
    )


class Recorder:
    name = "edge"

    def __init__(self, base: str) -> None:
        self.base = base

    def sign(self, request: UrlRequest) -> str:
        return f"{self.base}/{request.key}"


def test_the_routed_signer_signs_with_the_chosen_edges_signer():
    signer = RoutedSigner({e.url: Recorder(e.url) for e in THREE}, THREE, everyone)
    for key in KEYS[:50]:
        url = signer.sign(UrlRequest(key, 0, 60, "u"))
        assert url == f"{choose_edge(key, THREE, None, everyone).url}/{key}"
    assert signer.name == "edge"


@pytest.mark.parametrize(
    ("headers", "header", "expected"),
    [
        ({"x-client-region": "EU"}, "x-client-region", "eu"),
        ({"x-client-region": "eu"}, "", None),
        ({}, "x-client-region", None),
        ({"x-client-region": "e u"}, "x-client-region", None),
        ({"x-client-region": "x" * 40}, "x-client-region", None),
    ],
)
def test_the_client_region_comes_from_the_configured_header_only(headers, header, expected):
    from delivery.edge_routing import client_region

    assert client_region(headers, header) == expected


@pytest.mark.anyio
async def test_the_service_signs_each_object_for_its_edge_and_region(make_app, auth):
    from tests.delivery.conftest import client_for

    app = make_app(
        edge_urls="eu=http://eu-1:8080,eu=http://eu-2:8080,us=http://us-1:8080",
        region_header="x-client-region",
        edge_health_path="",  # no probing here: every edge is up
    )
    async with client_for(app) as c:
        seen = {}
        for track in ("sine", "chirp", "noise"):
            for _ in range(2):
                r = await c.get(
                    f"/v1/tracks/{track}/stream",
                    headers={**auth("alice", "premium"), "x-client-region": "eu"},
                )
                assert r.status_code == 200, r.text
                for rendition in r.json()["renditions"]:
                    url = rendition["url"]
                    key = url.split("/", 3)[3].split("?")[0]
                    host = url.split("/")[2]
                    assert seen.setdefault(key, host) == host  # one object, one edge
                    assert host in ("eu-1:8080", "eu-2:8080")
        us = await c.get(
            "/v1/tracks/sine/stream",
            headers={**auth("alice", "premium"), "x-client-region": "us"},
        )
        assert {r["url"].split("/")[2] for r in us.json()["renditions"]} == {"us-1:8080"}


def test_presigned_bucket_urls_have_no_edges_to_route(make_settings, media_catalog):
    from delivery.settings import SettingsError
    from delivery.signing import build_signer
    from origin.store import open_store

    settings = make_settings(signer="s3", edge_urls="http://a:1,http://b:2")
    with pytest.raises(SettingsError, match="DELIVERY_EDGE_URLS"):
        build_signer(settings, open_store(media_catalog.url))
