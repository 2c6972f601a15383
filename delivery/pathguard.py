"""Refuse request paths holding control characters, before routing.

Starlette matches a route with ``re.match`` against a pattern ending in ``$``,
and ``$`` also matches before a final newline: ``/v1/me%0A`` would be served as
``/v1/me``, and ``/v1/admin/users/alice/tier%0A`` would change alice. No route of
ours has a use for a control character (ids are printable ASCII), so any path
holding one (after percent-decoding) is a 400 in the usual JSON error body.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from delivery.errors import error_response

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ControlCharacterGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL.search(scope.get("path", "")):
            response = error_response(
                400, "invalid_request", "the request path holds a control character"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
