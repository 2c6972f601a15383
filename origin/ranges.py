"""HTTP byte ranges (RFC 9110 section 14) as pure functions.

Used by the origin server and the edge. Only single ranges are served: a
multi-range request is answered with the whole object (RFC 9110 lets a server
ignore Range), which players never send anyway.
"""

from __future__ import annotations


class MalformedRange(ValueError):
    """The Range header is not a syntactically valid single ``bytes=`` range."""


class RangeNotSatisfiable(ValueError):
    """The range lies wholly past the end of the representation (answer 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for an object of {size} bytes")
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against an object of ``size`` bytes.

    Returns ``(start, end)`` with ``end`` inclusive, or ``None`` when the whole
    object should be sent (no header, a non-bytes unit, or several ranges).
    Raises :class:`MalformedRange` for garbage (callers ignore the header, as
    RFC 9110 allows) and :class:`RangeNotSatisfiable` for a range past the end.

    >>> parse_range("bytes=0-99", 1000)
    (0, 99)
    >>> parse_range("bytes=900-", 1000)
    (900, 999)
    >>> parse_range("bytes=-100", 1000)
    (900, 999)
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep:
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    first, last = first.strip(), last.strip()
    if not _is_digits(first) and first != "":
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    if not _is_digits(last) and last != "":
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    if first == "":
        if last == "":
            raise MalformedRange(f"malformed Range header {header[:100]!r}")
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return (max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    if start >= size:
        raise RangeNotSatisfiable(size)
    return (start, min(end, size - 1))


def _is_digits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits such as '²'; a header must not.
    return text.isascii() and text.isdigit() and len(text) <= 19


def content_range(start: int, end: int, size: int) -> str:
    return f"bytes {start}-{end}/{size}"


def unsatisfied_range(size: int) -> str:
    return f"bytes */{size}"
