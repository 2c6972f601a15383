"""Fractional sort keys: pure functions, checked by examples and by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.modules.fractional import (
    InvalidKey,
    key_between,
    keys_between,
    spread_keys,
    validate_key,
)


def test_examples():
    assert key_between(None, None) == "a0"
    assert key_between("a0", None) == "a1"
    assert key_between(None, "a0") == "Zz"
    assert "a0" < key_between("a0", "a1") < "a1"
    assert key_between("az", None) == "b00"  # the integer part grows a digit
    assert key_between(None, "Z0") == "Yzz"


@pytest.mark.parametrize("bad", ["", "a", "a00", "!x", "a0 ", "A" + "0" * 26, "b0"])
def test_invalid_keys_are_refused(bad):
    with pytest.raises(InvalidKey):
        validate_key(bad)


def test_bounds_must_be_ordered():
    with pytest.raises(InvalidKey):
        key_between("a1", "a0")
    with pytest.raises(InvalidKey):
        key_between("a1", "a1")


def _assert_ordered(keys: list[str]) -> None:
    for k in keys:
        validate_key(k)
    encoded = [k.encode() for k in keys]
    # Byte-wise order (what SQLite BINARY and PostgreSQL COLLATE "C" compare) is the order.
    assert encoded == sorted(encoded)
    assert len(set(keys)) == len(keys)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=200))
def test_random_inserts_keep_the_list_sorted(choices):
    keys: list[str] = []
    for choice in choices:
        i = choice % (len(keys) + 1)
        a = keys[i - 1] if i > 0 else None
        b = keys[i] if i < len(keys) else None
        k = key_between(a, b)
        assert (a is None or a < k) and (b is None or k < b)
        keys.insert(i, k)
    _assert_ordered(keys)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=2, max_size=30),
    st.integers(0, 40),
    st.integers(0, 10_000),
)
def test_keys_between_fit_strictly_between(choices, n, pick):
    keys: list[str] = []
    for choice in choices:
        i = choice % (len(keys) + 1)
        keys.insert(i, key_between(keys[i - 1] if i else None, keys[i] if i < len(keys) else None))
    i = pick % (len(keys) + 1)
    a = keys[i - 1] if i > 0 else None
    b = keys[i] if i < len(keys) else None
    new = keys_between(a, b, n)
    assert len(new) == n
    _assert_ordered(new)
    assert all((a is None or a < k) and (b is None or k < b) for k in new)


@pytest.mark.parametrize("n", [0, 1, 2, 61, 62, 1000, 10_000])
def test_spread_keys_are_short_sorted_and_leave_room(n):
    keys = spread_keys(n)
    assert len(keys) == n
    _assert_ordered(keys)
    assert all(len(k) <= 6 for k in keys)
    if n >= 2:
        # There is room for a short key between any neighbours.
        assert len(key_between(keys[0], keys[1])) <= len(keys[0]) + 1


def test_appending_many_keeps_keys_short():
    keys = keys_between(None, None, 1)
    for _ in range(10_000):
        keys.append(key_between(keys[-1], None))
    assert max(len(k) for k in keys) <= 4
    _assert_ordered(keys)
