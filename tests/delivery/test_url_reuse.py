"""Signed URLs reused within DELIVERY_URL_REUSE_S (delivery.streams, delivery.signing.memo).

A repeat ask gets the URLs of the first one without a new signature; every URL handed
out still has more than its lifetime minus the reuse window left; routing stays live.
"""

from __future__ import annotations

import calendar
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from delivery.auth import AuthFailure
from delivery.edge_routing import choose_edge, parse_edges
from delivery.identity import Principal
from delivery.resolver import Track
from delivery.signing.memo import MemoizedSigner
from delivery.signing.port import UrlRequest
from delivery.signing.routed import RoutedSigner
from delivery.streams import StreamIssuer
from origin.manifest import Manifest
from tests.support.clock import FakeClock

LIFETIME, REUSE = 900, 60
T0 = 1_800_000_000.25  # a fractional clock: issue times are whole seconds
QUALITIES = {"low": 96, "normal": 160, "high": 320}
PREMIUM, FREE = Principal("alice", "premium"), Principal("bob", "free")


def track(track_id: str = "song", version: str = "0123456789abcdef") -> Track:
    manifest = Manifest.model_validate(
        {
            "schema": 1,
            "track_id": track_id,
            "version": version,
            "created_at": "2026-01-01T00:00:00Z",
            "source": {"sha256": "0" * 64, "bytes": 1, "duration_s": 30.0},
            "renditions": [
                {
                    "bitrate_kbps": b,
                    "key": f"tracks/{track_id}/{version}/{b}.ogg",
                    "bytes": b * 1000,
                    "sha256": "0" * 64,
                    "duration_s": 30.0,
                }
                for b in (96, 160, 320)
            ],
            "encoder": {"profile": "test"},
        }
    )
    return Track.of(manifest)


class CountingSigner:
    """A deterministic signer that counts its signatures."""

    name = "edge"

    def __init__(self, base: str = "https://edge.test") -> None:
        self.base = base
        self.signed: list[UrlRequest] = []

    def sign(self, request: UrlRequest) -> str:
        self.signed.append(request)
        r = request
        return f"{self.base}/{r.key}?iat={r.issued_at}&exp={r.expires_at}&sub={r.sub}"


def issuer(clock: FakeClock, signer, reuse_s: int = REUSE) -> StreamIssuer:
    return StreamIssuer(
        resolver=None,  # sign_answer is given the track
        signer=signer,
        entitlements={"free": [96, 160], "premium": [96, 160, 320]},
        quality_bitrates=QUALITIES,
        default_tier="free",
        ttl_s=LIFETIME,
        ttl_factor=2.0,
        ttl_max_s=24 * 3600,
        bind_client_ip=False,
        clock=clock,
        reuse_s=reuse_s,
    )


def expires_at(answer: dict) -> int:
    return calendar.timegm(time.strptime(answer["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))


def urls(answer: dict) -> list[str]:
    return [r["url"] for r in answer["renditions"]]


def test_a_repeat_ask_within_the_window_gets_the_same_urls_without_signing():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    first = streams.sign_answer(PREMIUM, track(), "auto", "10.0.0.1")
    assert len(inner.signed) == 3
    clock.now += REUSE - 1
    again = streams.sign_answer(PREMIUM, track(), "auto", "10.0.0.1")
    assert urls(again) == urls(first) and again["url"] == first["url"]
    assert again["expires_at"] == first["expires_at"]
    assert len(inner.signed) == 3  # nothing signed again


def test_a_quality_switch_within_the_window_reuses_the_same_urls():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    high = streams.sign_answer(PREMIUM, track(), "high", None)
    clock.now += 10
    low = streams.sign_answer(PREMIUM, track(), "low", None)
    assert (low["bitrate_kbps"], high["bitrate_kbps"]) == (96, 320)
    assert urls(low) == urls(high)
    assert low["url"] == urls(high)[0]
    assert len(inner.signed) == 3


def test_every_url_handed_out_has_more_than_its_lifetime_minus_the_window_left():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    issue_times = set()
    # Every half second across three windows: reused or fresh, never too short-lived.
    for step in range(6 * REUSE):
        clock.now = T0 + step / 2
        answer = streams.sign_answer(PREMIUM, track(), "auto", None)
        left = expires_at(answer) - clock.now
        assert LIFETIME - REUSE < left <= LIFETIME
        for request in inner.signed:
            assert request.issued_at <= clock.now  # never issued in the future
        issue_times.add(expires_at(answer) - LIFETIME)
    # Reused within each window, renewed after it: one issue time per window.
    assert len(issue_times) == 3
    assert len(inner.signed) == 3 * 3


def test_the_window_is_whole_seconds_of_the_issue_time():
    start = 1_800_000_000
    clock, inner = FakeClock(start + 0.99), CountingSigner()  # issued at `start`, 0.99 s ago
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    first = streams.sign_answer(PREMIUM, track(), "auto", None)
    clock.now = start + REUSE - 0.01  # still within: left = LIFETIME - REUSE + 0.01
    assert urls(streams.sign_answer(PREMIUM, track(), "auto", None)) == urls(first)
    clock.now = start + REUSE  # left would be exactly LIFETIME - REUSE: renewed
    renewed = streams.sign_answer(PREMIUM, track(), "auto", None)
    assert urls(renewed) != urls(first)
    assert expires_at(renewed) - clock.now == LIFETIME


def test_other_users_versions_and_addresses_get_their_own_urls():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    alice = streams.sign_answer(PREMIUM, track(), "auto", "10.0.0.1")
    clock.now += 5
    other_user = streams.sign_answer(Principal("carol", "premium"), track(), "auto", "10.0.0.1")
    other_version = streams.sign_answer(PREMIUM, track(version="fedcba9876543210"), "auto", None)
    other_address = streams.sign_answer(PREMIUM, track(), "auto", "10.0.0.2")
    assert not set(urls(alice)) & set(urls(other_user))
    assert not set(urls(alice)) & set(urls(other_version))
    # Another address is another request (a signer may bind it), with the same issue time.
    assert len(inner.signed) == 3 * 4
    assert other_address["expires_at"] == alice["expires_at"]


def test_the_tier_decides_what_is_handed_out_not_what_is_reused():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    free = streams.sign_answer(Principal("dave", "free"), track(), "high", None)
    assert [r["bitrate_kbps"] for r in free["renditions"]] == [96, 160] and free["capped"]
    upgraded = streams.sign_answer(Principal("dave", "premium"), track(), "high", None)
    assert [r["bitrate_kbps"] for r in upgraded["renditions"]] == [96, 160, 320]
    assert urls(upgraded)[:2] == urls(free)  # the two it already had, not signed again
    assert len(inner.signed) == 3


def test_a_clock_stepped_back_never_reuses_a_future_issue_time():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, MemoizedSigner(inner, REUSE))
    first = streams.sign_answer(PREMIUM, track(), "auto", None)
    clock.now -= 30
    back = streams.sign_answer(PREMIUM, track(), "auto", None)
    assert urls(back) != urls(first)
    assert expires_at(back) - LIFETIME == int(clock.now)


def test_without_reuse_every_answer_is_signed():
    clock, inner = FakeClock(T0), CountingSigner()
    streams = issuer(clock, inner, reuse_s=0)
    streams.sign_answer(PREMIUM, track(), "auto", None)
    clock.now += 1
    streams.sign_answer(PREMIUM, track(), "auto", None)
    assert len(inner.signed) == 6


def test_the_memo_sits_under_the_routing():
    edges = parse_edges("http://edge-a:8080,http://edge-b:8080")
    inner = {e.url: CountingSigner(e.url) for e in edges}
    up = {e.url: True for e in edges}
    routed = RoutedSigner(
        {url: MemoizedSigner(s, REUSE) for url, s in inner.items()}, edges, lambda url: up[url]
    )
    request = UrlRequest("tracks/song/0123456789abcdef/160.ogg", 100, 1000, "alice")
    home = choose_edge(request.key, edges, None, lambda url: True).url
    first = routed.sign(request)
    assert first.startswith(home) and routed.sign(request) == first
    up[home] = False  # the edge goes down: the same request moves at once
    moved = routed.sign(request)
    assert not moved.startswith(home)
    up[home] = True
    assert routed.sign(request) == first
    assert sum(len(s.signed) for s in inner.values()) == 2


def test_the_window_is_at_most_half_the_base_lifetime(make_settings):
    assert make_settings().effective_url_reuse_s == 60
    assert make_settings(url_ttl_s=10).effective_url_reuse_s == 5
    assert make_settings(url_reuse_s=0).effective_url_reuse_s == 0


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


@pytest.mark.anyio
async def test_the_service_reuses_verifiable_urls_for_a_repeat_ask(make_app, auth, edge_verifier):
    from tests.delivery.conftest import client_for

    app = make_app()
    async with client_for(app) as c:
        first = (await c.get("/v1/tracks/sine/stream", headers=auth("erin", "premium"))).json()
        again = (await c.get("/v1/tracks/sine/stream", headers=auth("erin", "premium"))).json()
        other = (await c.get("/v1/tracks/sine/stream", headers=auth("fay", "premium"))).json()
    assert urls(again) == urls(first)
    assert not set(urls(other)) & set(urls(first))
    for url in urls(again):
        claims = edge_verifier.verify(token_of(url), urlsplit(url).path)
        assert claims.exp - claims.iat == 900
        assert claims.exp - time.time() > 900 - 60


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_service_can_sign_every_answer(make_app, auth):
    from tests.delivery.conftest import client_for

    app = make_app(url_reuse_s=0)
    assert not isinstance(app.state.services.signer, MemoizedSigner)
    async with client_for(app) as c:
        first = (await c.get("/v1/tracks/sine/stream", headers=auth("gus", "premium"))).json()
        time.sleep(1.01)  # the next whole second: another issue time, another signature
        again = (await c.get("/v1/tracks/sine/stream", headers=auth("gus", "premium"))).json()
    assert not set(urls(again)) & set(urls(first))


def test_a_remembered_user_token_still_expires_at_its_exp(app, mint, user_secret):
    from delivery.auth import JwtAuthenticator
    from delivery.tiers import TierResolver
    from tests.delivery.conftest import AUDIENCE, ISSUER

    now = [time.time()]
    authenticator = JwtAuthenticator(
        tiers=TierResolver(app.state.services.tiers, "tier"),
        algorithms=["HS256"],
        hs256_secrets=[user_secret.encode()],
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway_s=30,
        clock=lambda: now[0],
    )
    token = mint("hal", ttl_s=120)
    assert authenticator.verify(token)["sub"] == "hal"  # verified, then remembered
    now[0] += 120 + 30
    with pytest.raises(AuthFailure) as refused:
        authenticator.verify(token)
    assert refused.value.code == "token_expired"
