"""Small pure pieces: rendezvous hashing, entry header, query parsing."""

from __future__ import annotations

import time

import pytest

from edge.app import query_token
from edge.cache.entry import HEADER_SIZE, EntryFormatError, ObjectMeta, decode_header, encode_header
from edge.upstream import default_etag, rendezvous_order


def test_rendezvous_is_stable_and_moves_little_when_a_target_goes():
    targets = ["http://a", "http://b", "http://c", "http://d"]
    keys = [f"tracks/t{i}/0123456789abcdef/96.ogg" for i in range(400)]
    home = {k: rendezvous_order(targets, k)[0] for k in keys}
    assert home == {k: rendezvous_order(list(reversed(targets)), k)[0] for k in keys}
    counts = {t: sum(1 for h in home.values() if h == t) for t in targets}
    assert all(60 <= n <= 140 for n in counts.values()), counts  # roughly even
    without_c = {k: rendezvous_order([t for t in targets if t != "http://c"], k)[0] for k in keys}
    moved = [k for k in keys if home[k] != without_c[k]]
    assert all(home[k] == "http://c" for k in moved)  # only c's objects found a new home


def test_entry_header_round_trip_and_rejects():
    meta = ObjectMeta("tracks/a/0123456789abcdef/96.ogg", 10, '"e"', "audio/ogg", "ab" * 32, None)
    raw = encode_header(meta)
    assert len(raw) == HEADER_SIZE and decode_header(raw) == meta
    with pytest.raises(EntryFormatError):
        decode_header(b"x" * HEADER_SIZE)
    with pytest.raises(EntryFormatError):
        decode_header(raw[:100])


def test_default_etag():
    assert default_etag("k", 5, "ab" * 32) == '"' + "ab" * 16 + '"'
    assert default_etag("k", 5, None).endswith('-5"')


@pytest.mark.parametrize(
    ("query", "token"),
    [
        (b"", None),
        (b"token=abc", "abc"),
        (b"x=1&token=abc&y=2", "abc"),
        (b"mytoken=abc", None),
        (b"mytoken=abc&token=def", "def"),
        (b"token=", None),
        (b"token=a%2Eb", "a.b"),
    ],
)
def test_query_token(query, token):
    assert query_token(query) == token


def test_remembered_tokens_keep_their_expiry_path_and_address_checks(ed_key):
    from common.signing_keys import verification_key_for
    from edge.token import (
        TokenIpMismatch,
        TokenPathMismatch,
        TokenVerifier,
        sign_stream_token,
    )

    verifier = TokenVerifier([verification_key_for(ed_key)], cache_ttl_s=30)
    path = "/tracks/t1/0123456789abcdef/160.ogg"
    t = int(time.time())  # PyJWT checks exp against the real clock
    token = sign_stream_token(path, key=ed_key, ttl_s=10, sub="u", ip="10.0.0.1", now=t)
    assert verifier.remembered(token, path, "10.0.0.1", t + 1) is None  # never verified
    assert verifier.remembered(None, path, "10.0.0.1", t + 1) is None
    verifier.verify(token, path, "10.0.0.1", t + 1)
    assert verifier.remembered(token, path, "10.0.0.1", t + 5).exp == t + 10
    with pytest.raises(TokenPathMismatch):
        verifier.remembered(token, "/tracks/t1/0123456789abcdef/96.ogg", "10.0.0.1", t + 5)
    with pytest.raises(TokenIpMismatch):
        verifier.remembered(token, path, "10.0.0.2", t + 5)
    # Past exp the memo is not trusted: verify() decides (token_expired).
    assert verifier.remembered(token, path, "10.0.0.1", t + 10) is None
