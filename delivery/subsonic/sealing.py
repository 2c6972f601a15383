"""Sealing app passwords at rest: AES-256-GCM under a key kept outside the database.

Subsonic's token login (``t = md5(password + salt)`` with a salt the client picks per
request) can only be checked by a server that knows the password, so a hash will not do;
the database holds the password encrypted instead, and a copy of the database alone
reveals nothing. Each sealed value is bound (GCM's associated data) to its user and
password id, so a row cannot be moved to another account.

The key is 32 random bytes, written hex-encoded with mode 0600 at first use
(``DELIVERY_SUBSONIC_KEY_FILE``, default under ``DELIVERY_DATA_DIR/keys``).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.secrets import write_secret_file

_KEY_HEX = re.compile(r"[0-9a-f]{64}")
_NONCE_BYTES = 12
MAX_SEALED = 512  # characters of a stored value (a password is at most 64 bytes)


class SealError(Exception):
    """A sealed value does not open with this key (wrong key, damaged, or moved)."""


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new random one (mode 0600) when the file does not exist."""
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32).encode(), 0o600)
    text = path.read_text().strip().lower()
    if not _KEY_HEX.fullmatch(text):
        raise ValueError(f"{str(path)!r} does not hold a 64-hex-digit AES-256 key")
    return bytes.fromhex(text)


class PasswordSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the app-password key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path) -> PasswordSeal:
        return cls(load_or_create_key(path))

    def seal(self, secret: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
            if len(sealed) > MAX_SEALED or len(raw) <= _NONCE_BYTES:
                raise SealError("sealed value has the wrong size")
            nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
            raise SealError("cannot open the sealed app password") from exc
