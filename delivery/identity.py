"""Who is calling: the authenticated principal every module receives.

The authentication itself (JWT verification, JWKS, tiers) lives in
``delivery.auth``; modules (playlists, search, social) only depend on
:func:`current_user`, which reads the authenticator the app was built with::

    @router.get("/v1/me/playlists")
    def my_playlists(user: Principal = Depends(current_user)): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Request

from delivery.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    tier: str = "free"
    claims: dict = field(default_factory=dict, compare=False, hash=False)


class Authenticator(Protocol):
    def authenticate(self, authorization: str | None) -> Principal:
        """Return the principal for an ``Authorization`` header or raise :class:`Unauthorized`."""


def current_user(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        raise Unauthorized("authentication is not configured")
    principal = authenticator.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal
