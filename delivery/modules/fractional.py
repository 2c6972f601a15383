"""Fractional sort keys: order a list by strings, so a move rewrites only the moved rows.

A playlist item's position is a string key; the list is the items sorted by key
**byte-wise** (SQLite's default BINARY collation, PostgreSQL ``COLLATE "C"``).
Inserting between two neighbours means inventing a key that sorts between
theirs — no other row changes, whatever the playlist's length.

The scheme follows David Greenspan's "Implementing Fractional Indexing" (the
algorithm behind the ``fractional-indexing`` packages), written here from the
description:

* Digits are base 62, ``0-9A-Za-z``: ASCII order equals digit order, so byte-wise
  string comparison equals numeric comparison.
* A key is an *integer part* plus an optional *fraction*. The integer part's first
  character gives its length (``a``-``z``: 2-27 characters for non-negative
  integers, ``Z``-``A``: 2-27 for negative ones, so more negative = sorts earlier).
  Appending or prepending one item at a time therefore grows keys only
  logarithmically (``a0``, ``a1``, ... ``az``, ``b00``, ...).
* The fraction never ends in ``0`` (otherwise ``x`` and ``x0`` would be equal
  numbers with different strings, and nothing would fit between them).

Public API (pure functions, no I/O)::

    key_between(None, None)      -> "a0"
    key_between("a0", None)      -> "a1"        (append)
    key_between(None, "a0")      -> "Zz"        (prepend)
    key_between("a0", "a1")      -> "a0V"       (insert between neighbours)
    keys_between("a0", "a1", 3)  -> three sorted keys strictly between the two
    spread_keys(n)               -> n short, evenly spaced keys (renumbering)
"""

from __future__ import annotations

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE = len(DIGITS)
_INDEX = {c: i for i, c in enumerate(DIGITS)}
_SMALLEST_INTEGER = "A" + "0" * 26


class InvalidKey(ValueError):
    """A string that is not a fractional key, or bounds in the wrong order."""


def _integer_length(head: str) -> int:
    if "a" <= head <= "z":
        return ord(head) - ord("a") + 2
    if "A" <= head <= "Z":
        return ord("Z") - ord(head) + 2
    raise InvalidKey(f"invalid key head {head!r}")


def _integer_part(key: str) -> str:
    length = _integer_length(key[0])
    if length > len(key):
        raise InvalidKey(f"invalid key {key!r}: integer part is truncated")
    return key[:length]


def validate_key(key: str) -> str:
    """Return ``key`` when it is a valid key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("a key is a non-empty string")
    if key == _SMALLEST_INTEGER:
        # Nothing could ever be placed before it.
        raise InvalidKey(f"invalid key {key!r}")
    integer = _integer_part(key)
    if any(c not in _INDEX for c in key[1:]):
        raise InvalidKey(f"invalid key {key!r}: digits are 0-9A-Za-z")
    if key[len(integer) :].endswith("0"):
        raise InvalidKey(f"invalid key {key!r}: fraction ends in 0")
    return key


def _midpoint(a: str, b: str | None) -> str:
    """A fraction strictly between fractions ``a`` and ``b`` (``b=None``: 1)."""
    if b is not None and a >= b:
        raise InvalidKey(f"{a!r} is not below {b!r}")
    if b:
        # Skip the common prefix (``a`` padded with zeros): the answer shares it.
        n = 0
        while n < len(b) and (a[n] if n < len(a) else "0") == b[n]:
            n += 1
        if n > 0:
            return b[:n] + _midpoint(a[n:], b[n:])
    digit_a = _INDEX[a[0]] if a else 0
    digit_b = _INDEX[b[0]] if b else _BASE
    if digit_b - digit_a > 1:
        return DIGITS[(digit_a + digit_b + 1) // 2]
    # The first digits are adjacent: take a's first digit and recurse on the rest.
    if b and len(b) > 1:
        return b[0]
    return DIGITS[digit_a] + _midpoint(a[1:], None)


def _increment_integer(x: str) -> str | None:
    head, digits = x[0], list(x[1:])
    for i in range(len(digits) - 1, -1, -1):
        d = _INDEX[digits[i]] + 1
        if d < _BASE:
            digits[i] = DIGITS[d]
            return head + "".join(digits)
        digits[i] = "0"
    # Carried out of every digit: the integer needs a longer (or shorter negative) form.
    if head == "Z":
        return "a0"
    if head == "z":
        return None
    new_head = chr(ord(head) + 1)
    if new_head > "a":
        digits.append("0")
    else:
        digits.pop()
    return new_head + "".join(digits)


def _decrement_integer(x: str) -> str | None:
    head, digits = x[0], list(x[1:])
    for i in range(len(digits) - 1, -1, -1):
        d = _INDEX[digits[i]] - 1
        if d >= 0:
            digits[i] = DIGITS[d]
            return head + "".join(digits)
        digits[i] = DIGITS[-1]
    if head == "a":
        return "Z" + DIGITS[-1]
    if head == "A":
        return None
    new_head = chr(ord(head) - 1)
    if new_head < "Z":
        digits.append(DIGITS[-1])
    else:
        digits.pop()
    return new_head + "".join(digits)


def key_between(a: str | None, b: str | None) -> str:
    """A key strictly between ``a`` and ``b``; ``None`` means "no bound on that side"."""
    if a is not None:
        validate_key(a)
    if b is not None:
        validate_key(b)
    if a is not None and b is not None and a >= b:
        raise InvalidKey(f"{a!r} is not below {b!r}")
    if a is None:
        if b is None:
            return "a0"
        int_b = _integer_part(b)
        frac_b = b[len(int_b) :]
        if int_b == _SMALLEST_INTEGER:
            return int_b + _midpoint("", frac_b)
        if int_b < b:
            return int_b  # b has a fraction: its bare integer part sorts just before it
        smaller = _decrement_integer(int_b)
        if smaller is None:
            raise InvalidKey("cannot go below the smallest key")
        return smaller
    int_a = _integer_part(a)
    frac_a = a[len(int_a) :]
    if b is None:
        larger = _increment_integer(int_a)
        return int_a + _midpoint(frac_a, None) if larger is None else larger
    int_b = _integer_part(b)
    frac_b = b[len(int_b) :]
    if int_a == int_b:
        return int_a + _midpoint(frac_a, frac_b)
    larger = _increment_integer(int_a)
    if larger is None:
        raise InvalidKey("cannot go above the largest key")
    if larger < b:
        return larger
    return int_a + _midpoint(frac_a, None)


def keys_between(a: str | None, b: str | None, n: int) -> list[str]:
    """``n`` sorted keys strictly between ``a`` and ``b``.

    Between two bounds the keys are bisected, so ``n`` keys cost O(log n) extra
    characters each; at an open end they step one integer at a time.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return []
    if n == 1:
        return [key_between(a, b)]
    if b is None:
        out = [key_between(a, None)]
        for _ in range(n - 1):
            out.append(key_between(out[-1], None))
        return out
    if a is None:
        out = [key_between(None, b)]
        for _ in range(n - 1):
            out.append(key_between(None, out[-1]))
        out.reverse()
        return out
    mid = n // 2
    c = key_between(a, b)
    return [*keys_between(a, c, mid), c, *keys_between(c, b, n - mid - 1)]


def spread_keys(n: int) -> list[str]:
    """``n`` fresh, short, evenly spaced keys: used to renumber a list whose keys grew long."""
    return keys_between(None, None, n) if n <= 1 else _spread(n)


def _spread(n: int) -> list[str]:
    # Fixed-width integers ("a" heads have 1 digit, "b" 2, ...) with gaps between them,
    # so later inserts anywhere find room without lengthening keys for a long while.
    width = 1
    while _BASE**width < 2 * n:
        width += 1
    head = chr(ord("a") + width - 1)
    step = _BASE**width // (n + 1)
    out = []
    for i in range(1, n + 1):
        value = i * step
        digits = []
        for _ in range(width):
            value, d = divmod(value, _BASE)
            digits.append(DIGITS[d])
        out.append(head + "".join(reversed(digits)))
    return out
