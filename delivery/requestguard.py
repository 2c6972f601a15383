"""Refuse requests no route can mean, before routing: one 400 for the whole family.

* **Control characters in the path or query.** Starlette matches a route with
  ``re.match`` against a pattern ending in ``$``, and ``$`` also matches before a
  final newline: ``/v1/me%0A`` would be served as ``/v1/me``, and
  ``/v1/admin/users/alice/tier%0A`` would change alice. No id, name or query of
  ours has a use for a control character, and PostgreSQL cannot even store NUL in
  text, so a percent-decoded path or query value holding one is a 400.
* **JSON bodies the parser or the database cannot take.** Python's ``json``
  recurses once per nesting level (``[[[[...`` a megabyte deep is a
  ``RecursionError``), and accepts escaped lone surrogates (``"\\ud800"``) and NUL
  (``"\\u0000"``) that no UTF-8 database column can store. Such a body is a 400
  here rather than a 500 deep inside a handler. Bodies are already bounded by
  :class:`common.serving.BodyLimit` (outermost), so buffering one here is cheap;
  anything that is not JSON passes untouched for the route to refuse as usual.

Answers use the usual JSON error body with code ``invalid_request``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from delivery.errors import error_response

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")
# Far deeper than any document of our API, far shallower than the interpreter's stack.
MAX_JSON_DEPTH = 64
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestRefused(ValueError):
    """Why a request cannot be meant; the message is shown to the client."""


def check_target(path: str, query_string: bytes) -> None:
    """Refuse control characters in the (decoded) path or in any decoded query byte."""
    if _CONTROL.search(path):
        raise RequestRefused("the request path holds a control character")
    if query_string and _CONTROL_BYTES.search(unquote_to_bytes(query_string.replace(b"+", b" "))):
        raise RequestRefused("the query string holds a control character")


def check_json_body(body: bytes) -> None:
    """Refuse a JSON body too deep to parse safely or holding unstorable text.

    Not JSON at all (or empty) is left to the route, which answers its own 400.
    """
    if not body or depth_exceeds(body, MAX_JSON_DEPTH):
        if body:
            raise RequestRefused(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return
    try:
        document = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): the route's own parser answers
        return
    for text in _strings(document):
        if "\x00" in text:
            raise RequestRefused("JSON text may not contain NUL (\\u0000)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestRefused("JSON text holds a lone surrogate escape") from None


# A JSON string (escapes included; possessive, so no backtracking), and every byte that
# is not a bracket: what is left of a body once both are gone is its nesting, in C speed.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def depth_exceeds(body: bytes, limit: int) -> bool:
    """True when ``[``/``{`` nest deeper than ``limit`` outside strings (no parsing)."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:  # ] }
            depth -= 1
    return False


def _strings(document: Any):
    """Every key and string value of a parsed JSON document, without recursion."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


class RequestGuard:
    """Pure ASGI middleware applying :func:`check_target` and :func:`check_json_body`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope.get("path", ""), scope.get("query_string", b""))
            if scope["method"] in _BODY_METHODS:
                body, receive = await _buffered(receive)
                check_json_body(body)
        except RequestRefused as refused:
            await error_response(400, "invalid_request", str(refused))(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body, and a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # disconnected: let the app see it
            replay: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    else:
        replay = []
    body = b"".join(chunks)
    replay.insert(0, {"type": "http.request", "body": body, "more_body": False})

    async def replaying() -> Message:
        if replay:
            return replay.pop(0)
        return await receive()

    return body, replaying
