"""The pure credential checks of delivery.subsonic.auth."""

from __future__ import annotations

import pytest

from delivery.subsonic.auth import (
    ApiKeyLogin,
    PasswordLogin,
    TokenLogin,
    api_key_digest,
    decode_password,
    parse_login,
    password_matches,
    token_for,
)
from delivery.subsonic.errors import SubsonicError


def code_of(params) -> int:
    with pytest.raises(SubsonicError) as caught:
        parse_login(params)
    return caught.value.code


def test_token_is_md5_of_password_and_salt_as_the_spec_shows():
    # The Subsonic API documentation's own example.
    assert token_for("sesame", "c19b2d") == "26719a1196d2a940705a59634eb18eab"


def test_token_login_is_parsed_and_lowercased():
    login = parse_login({"u": "alice", "t": "26719A1196D2A940705A59634EB18EAB", "s": "c19b2d"})
    assert login == TokenLogin("alice", "26719a1196d2a940705a59634eb18eab", "c19b2d")
    assert password_matches(login, ["other", "sesame"])
    assert not password_matches(login, ["other"])
    assert not password_matches(login, [])


def test_clear_and_hex_encoded_passwords():
    assert parse_login({"u": "bob", "p": "sesame"}) == PasswordLogin("bob", "sesame")
    assert parse_login({"u": "bob", "p": "enc:736573616d65"}) == PasswordLogin("bob", "sesame")
    assert decode_password("enc:C3A9") == "é"
    assert password_matches(PasswordLogin("bob", "sesame"), ["sesame"])
    assert not password_matches(PasswordLogin("bob", "sesam"), ["sesame"])


@pytest.mark.parametrize("p", ["enc:zz", "enc:abc", "enc:ff"])
def test_a_bad_hex_password_is_wrong_credentials(p):
    assert code_of({"u": "bob", "p": p}) == 40


def test_missing_parameters_are_error_10():
    assert code_of({}) == 10
    assert code_of({"t": "0" * 32, "s": "x"}) == 10  # no user
    assert code_of({"u": "bob"}) == 10  # no password or token
    assert code_of({"u": "bob", "t": "0" * 32}) == 10  # token without salt
    assert code_of({"u": "bob", "s": "abc"}) == 10  # salt without token


def test_api_key_alone_and_its_conflicts():
    assert parse_login({"apiKey": "k" * 43}) == ApiKeyLogin("k" * 43)
    assert code_of({"apiKey": "k", "u": "bob"}) == 43
    assert code_of({"apiKey": "k", "p": "x"}) == 43
    assert code_of({"apiKey": "k", "t": "0" * 32, "s": "x"}) == 43
    assert code_of({"apiKey": "k" * 500}) == 44


@pytest.mark.parametrize(
    "params",
    [
        {"u": "bob", "t": "0" * 31, "s": "abc"},  # not an md5
        {"u": "bob", "t": "g" * 32, "s": "abc"},
        {"u": "bob", "t": "0" * 32, "s": "a" * 65},  # salt too long
        {"u": "bob", "t": "0" * 32, "s": "a b"},  # no spaces
    ],
)
def test_malformed_token_or_salt_is_refused_before_any_lookup(params):
    assert code_of(params) == 0


def test_overlong_user_or_password_is_wrong_credentials():
    assert code_of({"u": "u" * 129, "p": "x"}) == 40
    assert code_of({"u": "bob", "p": "x" * 300}) == 40


def test_api_key_digest_is_sha256_hex():
    assert api_key_digest("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
