"""Per-user app passwords for Subsonic apps: created, listed, revoked, checked.

``delivery users app-password create alice --name phone`` makes one: a random password
(24 characters) for the app's login form and an OpenSubsonic API key, both printed once.
The password is stored sealed (:mod:`delivery.subsonic.sealing`), the API key as its
SHA-256 (:func:`delivery.subsonic.auth.api_key_digest`). A user holds at most
:data:`MAX_PER_USER`, so checking a login costs a bounded number of decryptions.
Revoking one takes effect at the next request (nothing is cached).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery.db import Database
from delivery.modules.ids import now_ms
from delivery.subsonic.auth import (
    ApiKeyLogin,
    Login,
    api_key_digest,
    password_matches,
)
from delivery.subsonic.sealing import PasswordSeal, SealError
from delivery.tiers import validate_user_id

MAX_PER_USER = 20
MAX_NAME = 64
PASSWORD_ID_BYTES = 8


class AppPasswordError(ValueError):
    """A bad name, an unknown id, or a user already holding the most passwords allowed."""


@dataclass(frozen=True, slots=True)
class NewAppPassword:
    password_id: str
    user_id: str
    name: str
    password: str  # shown once, never stored in clear
    api_key: str  # shown once, stored as its SHA-256


def _context(user_id: str, password_id: str) -> str:
    return f"subsonic-app-password:{user_id}:{password_id}"


class AppPasswords:
    def __init__(self, db: Database, key_file: Path) -> None:
        self.db = db
        self.key_file = key_file
        self._seal: PasswordSeal | None = None
        self._lock = threading.Lock()

    def seal(self, *, create: bool) -> PasswordSeal | None:
        """The sealing key, read once; made (mode 0600) by the first ``create``. A server
        that has none yet has no app password either, so it never makes one itself."""
        with self._lock:
            if self._seal is None and (create or self.key_file.exists()):
                self._seal = PasswordSeal.from_file(self.key_file)
            return self._seal

    def _sealing(self) -> PasswordSeal:
        seal = self.seal(create=True)
        if seal is None:  # cannot happen: create=True reads or makes the key
            raise RuntimeError(f"no app-password key at {str(self.key_file)!r}")
        return seal

    def create(self, user_id: str, name: str) -> NewAppPassword:
        validate_user_id(user_id)
        name = " ".join(name.split())
        if not 1 <= len(name) <= MAX_NAME:
            raise AppPasswordError(f"name must be 1-{MAX_NAME} characters")
        password_id = secrets.token_hex(PASSWORD_ID_BYTES)
        seal = self._sealing()
        # token_urlsafe: letters, digits, - and _ only, so any app's form can take it.
        password, api_key = secrets.token_urlsafe(18), secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            held = tx.fetchone(
                "SELECT COUNT(*) AS n FROM app_passwords WHERE user_id = :u", {"u": user_id}
            )["n"]
            if held >= MAX_PER_USER:
                raise AppPasswordError(
                    f"{user_id} already has {MAX_PER_USER} app passwords: revoke one first"
                )
            tx.execute(
                "INSERT INTO app_passwords (password_id, user_id, name, sealed, api_key_sha256, "
                "created_at) VALUES (:id, :u, :n, :sealed, :key, :now)",
                {
                    "id": password_id,
                    "u": user_id,
                    "n": name,
                    "sealed": seal.seal(password, _context(user_id, password_id)),
                    "key": api_key_digest(api_key),
                    "now": now_ms(),
                },
            )
        return NewAppPassword(password_id, user_id, name, password, api_key)

    def list(self, user_id: str) -> list[dict[str, Any]]:
        validate_user_id(user_id)
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(
                "SELECT password_id, user_id, name, created_at FROM app_passwords "
                "WHERE user_id = :u ORDER BY created_at, password_id",
                {"u": user_id},
            )

    def revoke(self, user_id: str, password_id: str) -> None:
        validate_user_id(user_id)
        with self.db.transaction() as tx:
            gone = tx.execute(
                "DELETE FROM app_passwords WHERE user_id = :u AND password_id = :id",
                {"u": user_id, "id": password_id},
            )
        if not gone:
            raise AppPasswordError(f"{user_id} has no app password {password_id[:40]!r}")

    def _passwords(self, user_id: str) -> list[str]:
        seal = self.seal(create=False)
        if seal is None:
            return []
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT password_id, sealed FROM app_passwords WHERE user_id = :u LIMIT :n",
                {"u": user_id, "n": MAX_PER_USER},
            )
        out = []
        for row in rows:
            try:
                out.append(seal.open(row["sealed"], _context(user_id, row["password_id"])))
            except SealError:
                continue  # sealed under another key (a host with the wrong key file): no match
        return out

    def user_for(self, login: Login) -> str | None:
        """The user ``login`` proves, or None (wrong user, password or key)."""
        if isinstance(login, ApiKeyLogin):
            with self.db.transaction(write=False) as tx:
                row = tx.fetchone(
                    "SELECT user_id FROM app_passwords WHERE api_key_sha256 = :k",
                    {"k": api_key_digest(login.api_key)},
                )
            return row["user_id"] if row else None
        if password_matches(login, self._passwords(login.user)):
            return login.user
        return None
