"""Who is calling: the authenticated principal every module receives.

The authentication itself (JWT verification, JWKS, tiers) lives in
``delivery.auth``; routes take the principal from the dependency
:func:`delivery.services.current_user`, which asks the authenticator the app was
built with::

    @router.get("/v1/me/playlists")
    def my_playlists(user: Principal = Depends(current_user)): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    tier: str = "free"
    claims: dict = field(default_factory=dict, compare=False, hash=False)


class Authenticator(Protocol):
    def authenticate(self, authorization: str | None) -> Principal:
        """Return the principal for an ``Authorization`` header or raise ``Unauthorized``."""
