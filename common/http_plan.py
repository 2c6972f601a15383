"""The answer to a GET or HEAD of a stored object, decided once for the origin and the edge.

:func:`plan_response` is pure: from the method, the request's ``Range`` and
conditional headers and the object's size and validators it returns a
:class:`Plan` (status, the headers that follow from the decision, the bytes to
send). The caller adds its own headers (content type, cache control, CORS, ...)
and sends. RFC 9110 sections 13 and 14, in its order of evaluation::

    If-Match present and no ETag in it matches strongly (``*`` matches) -> 412
    else If-Unmodified-Since a valid date and Last-Modified later       -> 412
    If-None-Match present and an ETag in it matches weakly (or ``*``)   -> 304
    else If-Modified-Since a valid date and Last-Modified not later     -> 304
    Range present, If-Range absent or matching (strong ETag, exact date):
        a single satisfiable bytes range                                -> 206
        a single range wholly past the end                              -> 416
    otherwise (no Range, If-Range not matching, a malformed Range,
    another unit, several ranges)                                       -> 200

Choices where RFC 9110 leaves room, kept from the origin and edge as they were:

* Several ranges (``bytes=0-1,5-6``) are answered with the whole object (200):
  RFC 9110 lets a server ignore Range, and players never ask for several.
* A malformed Range is ignored (200), as RFC 9110 allows.
* HEAD is planned exactly like GET (206/416 included, RFC 9110 section 9.3.2:
  the same header fields), only without a body.
* Dates are compared at one-second precision. An invalid date (or a list of
  dates) in a conditional is ignored, as RFC 9110 requires. Without a known
  Last-Modified, the date conditionals are ignored and an If-Range date never
  matches.

Dates are parsed by :func:`parse_http_date` (the three HTTP-date forms, strictly:
never compared as strings). A weak ETag never satisfies If-Match or If-Range.

A :class:`Representation` is built once per object (the edge keeps one per
cached object) and pre-builds the header values; it remembers a few plans of
plain range requests (no conditionals), so the hit path costs a dict lookup.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Final, NamedTuple

__all__ = [
    "CONDITIONAL_HEADERS",
    "NO_CONDITIONS",
    "UNSATISFIABLE",
    "Conditionals",
    "Plan",
    "Representation",
    "format_http_date",
    "parse_http_date",
    "parse_range",
    "plan_response",
    "read_conditionals",
]

Header = tuple[bytes, bytes]


# -- byte ranges (RFC 9110 section 14) --------------------------------------------------


class _Unsatisfiable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = _Unsatisfiable()
"""What :func:`parse_range` returns for a range wholly past the end (answer 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | _Unsatisfiable:
    """Resolve a ``Range`` header against an object of ``size`` bytes.

    Returns ``(start, end)`` with ``end`` inclusive; ``None`` when the whole object
    should be sent (no header, a malformed one, a non-bytes unit, several ranges);
    :data:`UNSATISFIABLE` for a single range wholly past the end (416).

    >>> parse_range("bytes=0-99", 1000)
    (0, 99)
    >>> parse_range("bytes=900-", 1000)
    (900, 999)
    >>> parse_range("bytes=-100", 1000)
    (900, 999)
    >>> parse_range("bytes=1000-", 1000)
    UNSATISFIABLE
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if (first and not _is_digits(first)) or (last and not _is_digits(last)):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return (max(0, size - suffix), size - 1)
    start = int(first)
    if last:
        end = int(last)
        if end < start:
            return None  # invalid: ignored
    else:
        end = size - 1
    if start >= size:
        return UNSATISFIABLE
    return (start, min(end, size - 1))


def _is_digits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits such as '²'; a header must not.
    return text.isascii() and text.isdigit() and len(text) <= 19


# -- HTTP dates (RFC 9110 section 5.6.7) -----------------------------------------------

_DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_LONG_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_MON = "|".join(_MONTHS)
_TIME = r"(\d\d):(\d\d):(\d\d)"
# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
_IMF = re.compile(rf"(?:{_DAYS}), (\d\d) ({_MON}) (\d{{4}}) {_TIME} GMT")
# obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(rf"(?:{_LONG_DAYS}), (\d\d)-({_MON})-(\d\d) {_TIME} GMT")
# obsolete asctime: Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(rf"(?:{_DAYS}) ({_MON}) ([ \d]\d) {_TIME} (\d{{4}})")


@functools.lru_cache(maxsize=1024)
def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP-date, or ``None`` when it is not a valid one.

    Accepts the three forms of RFC 9110 (IMF-fixdate and the obsolete RFC 850 and
    asctime forms), exactly as written there (case-sensitive, GMT only; whitespace
    around the value is ignored). Anything else, a list of dates included, is
    ``None``. A two-digit RFC 850 year is 19xx from 70, else 20xx.
    """
    if not value:
        return None
    value = value.strip()
    if m := _IMF.fullmatch(value):
        day, mon, year, hh, mm, ss = m.groups()
    elif m := _RFC850.fullmatch(value):
        day, mon, yy, hh, mm, ss = m.groups()
        year = str(int(yy) + (1900 if int(yy) >= 70 else 2000))
    elif m := _ASCTIME.fullmatch(value):
        mon, day, hh, mm, ss, year = m.groups()
    else:
        return None
    try:
        moment = datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss))
    except ValueError:  # 31 Feb, 25:00:00, ...
        return None
    return calendar.timegm(moment.timetuple())


def format_http_date(epoch: float) -> str:
    """The IMF-fixdate of ``epoch`` (seconds, fractions dropped)."""
    return formatdate(int(epoch), usegmt=True)


def _epoch(value: float | datetime | str | None) -> tuple[int | None, str | None]:
    """``(seconds, header value)`` of a Last-Modified given as epoch, datetime or HTTP-date."""
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        return parse_http_date(value), value  # a header passed through verbatim
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        seconds = int(value.timestamp() // 1)
    else:
        seconds = int(value // 1)
    return seconds, format_http_date(seconds)


# -- entity tags (RFC 9110 section 8.8.3) ----------------------------------------------

_ETAGS = re.compile(r'(W/)?("[^"]*")')


def _matches_any(header: str, etag: str, *, weak: bool) -> bool:
    """Whether an If-Match / If-None-Match list matches ``etag``.

    ``weak``: the weak comparison (``W/"x"`` matches ``"x"``), for If-None-Match;
    else the strong one (neither may be weak), for If-Match. ``*`` matches any
    current representation.
    """
    if header.strip() == "*":
        return True
    if not etag:
        return False
    own_weak = etag.startswith("W/")
    if not weak and own_weak:
        return False
    opaque = etag[2:] if own_weak else etag
    for w, tag in _ETAGS.findall(header):
        if tag == opaque and (weak or not w):
            return True
    return False


# -- the plan --------------------------------------------------------------------------


class Conditionals(NamedTuple):
    """The conditional request headers, as sent (``None`` when absent)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    if_range: str | None = None


NO_CONDITIONS: Final = Conditionals()
"""A request without conditional headers (the common case: compared by identity)."""

CONDITIONAL_HEADERS: Final = frozenset(
    ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range")
)


def read_conditionals(headers: Mapping[str, str]) -> Conditionals:
    """The :class:`Conditionals` of lower-cased request headers; :data:`NO_CONDITIONS` if none."""
    found = Conditionals(
        headers.get("if-match"),
        headers.get("if-none-match"),
        headers.get("if-modified-since"),
        headers.get("if-unmodified-since"),
        headers.get("if-range"),
    )
    return NO_CONDITIONS if found == NO_CONDITIONS else found


class Plan(NamedTuple):
    """What to answer.

    ``status``: 200, 206, 304, 412 or 416. ``headers``: ASGI header pairs that
    follow from the decision: for 200/206 Accept-Ranges, ETag, Last-Modified (when
    known), Content-Length and, for 206, Content-Range; for 304 ETag and
    Last-Modified; for 416 ``Content-Range: bytes */size``; none for 412 (a 412 or
    416 carries the caller's error body and its length). ``span``: the bytes to
    send, ``(first, last)`` with ``last`` inclusive (``(0, -1)`` for an empty
    object), or ``None`` when there is no body to send (HEAD, 304, 412, 416).
    """

    status: int
    headers: tuple[Header, ...]
    span: tuple[int, int] | None


_ACCEPT_RANGES: Final = (b"accept-ranges", b"bytes")
_MEMO_MAX = 64  # plain range plans remembered per representation
_MEMO_KEY_MAX = 64  # longer Range headers are not a player's: not remembered
_PRECONDITION_FAILED: Final = Plan(412, (), None)


class Representation:
    """One object's size and validators, with the header values built once.

    ``last_modified`` may be seconds since the epoch, a ``datetime`` (naive means
    UTC) or an HTTP-date string (sent back verbatim; compared once parsed).
    Immutable once built, as the objects are.
    """

    __slots__ = (
        "size",
        "etag",
        "modified",
        "last_modified",
        "validators",
        "not_modified",
        "unsatisfiable",
        "_get",
        "_head",
        "_memo",
    )

    def __init__(self, size: int, etag: str, last_modified: float | datetime | str | None = None):
        self.size = size
        self.etag = etag
        self.modified, self.last_modified = _epoch(last_modified)
        validators: list[Header] = []
        if etag:
            validators.append((b"etag", etag.encode("latin-1")))
        if self.last_modified is not None:
            validators.append((b"last-modified", self.last_modified.encode("latin-1")))
        self.not_modified = Plan(304, tuple(validators), None)
        self.validators = (_ACCEPT_RANGES, *validators)
        full = (*self.validators, (b"content-length", b"%d" % size))
        self._get = Plan(200, full, (0, size - 1))
        self._head = Plan(200, full, None)
        self.unsatisfiable = Plan(416, ((b"content-range", b"bytes */%d" % size),), None)
        self._memo: dict[tuple[str, bool], Plan] = {}

    def __repr__(self) -> str:
        return f"Representation({self.size}, {self.etag!r}, {self.last_modified!r})"

    def _range_plan(self, range_header: str, head: bool) -> Plan:
        span = parse_range(range_header, self.size)
        if span is None:
            return self._head if head else self._get
        if span is UNSATISFIABLE:
            return self.unsatisfiable
        first, last = span  # type: ignore[misc]
        headers = (
            *self.validators,
            (b"content-length", b"%d" % (last - first + 1)),
            (b"content-range", b"bytes %d-%d/%d" % (first, last, self.size)),
        )
        return Plan(206, headers, None if head else (first, last))

    def _if_range_holds(self, value: str) -> bool:
        value = value.strip()
        if value.startswith('"'):  # a strong entity tag (weak ones never match here)
            return value == self.etag
        if value.startswith("W/"):
            return False
        since = parse_http_date(value)
        return since is not None and since == self.modified


def plan_response(
    rep: Representation,
    method: str = "GET",
    range_header: str | None = None,
    conditionals: Conditionals = NO_CONDITIONS,
) -> Plan:
    """Decide the answer to ``method`` (GET or HEAD) of ``rep``; see the module docstring.

    Raises :class:`ValueError` for another method (refuse those with 405 first).
    """
    if method == "GET":
        head = False
    elif method == "HEAD":
        head = True
    else:
        raise ValueError(f"plan_response answers GET and HEAD, not {method[:16]!r}")
    if conditionals is not NO_CONDITIONS:
        im, inm, ims, ius, if_range = conditionals
        if im is not None:
            if not _matches_any(im, rep.etag, weak=False):
                return _PRECONDITION_FAILED
        elif ius is not None:
            since = parse_http_date(ius)
            if since is not None and rep.modified is not None and rep.modified > since:
                return _PRECONDITION_FAILED
        if inm is not None:
            if _matches_any(inm, rep.etag, weak=True):
                return rep.not_modified
        elif ims is not None:
            since = parse_http_date(ims)
            if since is not None and rep.modified is not None and rep.modified <= since:
                return rep.not_modified
        if range_header is None:
            return rep._head if head else rep._get
        if if_range is not None and not rep._if_range_holds(if_range):
            return rep._head if head else rep._get
    elif range_header is None:
        return rep._head if head else rep._get
    if len(range_header) > _MEMO_KEY_MAX:
        return rep._range_plan(range_header, head)
    memo = rep._memo
    key = (range_header, head)
    plan = memo.get(key)
    if plan is None:
        plan = rep._range_plan(range_header, head)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = plan
    return plan
