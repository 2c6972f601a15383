"""The ``subsonic-response`` envelope, in XML (the default) or JSON (``f=json``).

An answer is built once as plain data and rendered either way, so the two formats cannot
disagree. The data model is Subsonic's own: an element is a ``dict`` whose scalar values
are its attributes, whose ``dict`` values are single child elements and whose ``list``
values are repeated child elements of that name; a ``value`` key is the element's text.
The JSON form of the API is exactly this
structure (attributes and children side by side, repeated children as arrays); XML writes
scalars as attributes and the rest as nested elements.

    >>> render_xml({"status": "ok", "license": {"valid": True}})[-43:]
    b'<license valid="true"/></subsonic-response>'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

API_VERSION = "1.16.1"
SERVER_TYPE = "audiocdn"
SERVER_VERSION = "0.1.0"
XMLNS = "http://subsonic.org/restapi"
FORMATS = ("xml", "json")

Element = Mapping[str, Any]

# XML 1.0 cannot carry most control characters, even escaped; a tag read from a user's
# file may hold one. They are dropped from XML (JSON escapes them).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def envelope(status: str = "ok") -> dict[str, Any]:
    return {
        "status": status,
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": SERVER_VERSION,
        "openSubsonic": True,
    }


def ok(body: Element | None = None) -> dict[str, Any]:
    """A successful response holding ``body``'s elements (e.g. ``{"artist": {...}}``)."""
    return {**envelope("ok"), **(body or {})}


def failed(code: int, message: str) -> dict[str, Any]:
    return {**envelope("failed"), "error": {"code": code, "message": message}}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _XML_INVALID.sub("", str(value))


def _element(name: str, element: Element, out: list[str]) -> None:
    attrs = []
    children: list[tuple[str, Any]] = []
    text = None
    for key, value in element.items():
        if value is None:
            continue
        if key == "value":  # Subsonic's element text (``<genre songCount="3">Rock</genre>``)
            text = escape(_scalar(value))
            continue
        if isinstance(value, Mapping):
            children.append((key, value))
        elif isinstance(value, list):
            # Repeated elements; a list of scalars is elements with text content
            # (``<versions>1</versions>``), which JSON writes as an array of values.
            children.extend((key, item) for item in value)
        else:
            attrs.append(f" {key}={quoteattr(_scalar(value))}")
    out.append(f"<{name}{''.join(attrs)}")
    if not children and text is None:
        out.append("/>")
        return
    out.append(">")
    if text is not None:
        out.append(text)
    for child_name, child in children:
        if isinstance(child, Mapping):
            _element(child_name, child, out)
        else:
            out.append(f"<{child_name}>{escape(_scalar(child))}</{child_name}>")
    out.append(f"</{name}>")


def render_xml(response: Element) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    _element("subsonic-response", {"xmlns": XMLNS, **response}, out)
    return "".join(out).encode()


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def render_json(response: Element) -> bytes:
    body = {"subsonic-response": _drop_none(response)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def render(response: Element, fmt: str) -> tuple[bytes, str]:
    """``(body, content type)`` for ``fmt`` (``json``; anything else is XML, as clients
    asking for ``jsonp`` or nothing still need an answer they can read)."""
    if fmt == "json":
        return render_json(response), "application/json"
    return render_xml(response), "text/xml; charset=utf-8"
