"""common.bearer: strict ``Bearer`` parsing and the constant-time token check."""

from __future__ import annotations

import hmac

import pytest

from common import bearer
from common.bearer import bearer_token, matches_any


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("  Bearer abc", "abc"),
        ("Bearer a.b-c_d~e+f/g==", "a.b-c_d~e+f/g=="),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("Bearer a b", None),
        ("Bearer\tabc", None),
        ("Bearer a\tb", None),
        ("Bearer a\x00b", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_parses_strictly(value, expected):
    assert bearer_token(value) == expected


def test_bearer_token_keeps_bytes_as_bytes():
    assert bearer_token(b"Bearer abc") == b"abc"
    assert bearer_token(b"Basic abc") is None
    assert bearer_token(b"") is None
    assert bearer_token("Bearer caf\xe9".encode("latin-1")) == "caf\xe9".encode("latin-1")


@pytest.mark.parametrize(
    ("presented", "accepted", "expected"),
    [
        ("abc", ["abc"], True),
        (b"abc", ["abc"], True),
        ("abc", [b"abc"], True),
        ("abc", ["x", "abc", "y"], True),
        ("abc", ["abcd"], False),
        ("abc", ["ab"], False),
        ("abc", [], False),
        ("", [""], False),
        (None, ["abc"], False),
        ("abc", ["", "abc"], True),
        ("ABC", ["abc"], False),
        # A configured non-ASCII token (UTF-8) against the header bytes a client sent.
        ("tøken".encode().decode("latin-1"), ["tøken"], True),
        ("tøken".encode(), ["tøken"], True),
    ],
)
def test_matches_any(presented, accepted, expected):
    assert matches_any(presented, accepted) is expected


def test_matches_any_compares_every_token_without_early_exit(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(bearer.hmac, "compare_digest", spy)
    assert matches_any("first", ["first", "second", "third"]) is True
    assert calls == [b"first", b"second", b"third"]
    calls.clear()
    assert matches_any("nope", ("a", "b")) is False
    assert calls == [b"a", b"b"]


def test_matches_any_accepts_any_iterable():
    assert matches_any("b", (t for t in ["a", "b"])) is True
