"""Where each secret of the delivery service comes from.

A secret is either configured (an environment variable or a file the operator
mounts) or, in dev mode only, generated once at first run under
``{DELIVERY_DATA_DIR}`` with mode 0600 (:func:`common.secrets.ensure_secret`,
:func:`common.signing_keys.ensure_dev_keypair`). Nothing is ever hard-coded. Outside dev
mode a missing secret is a start-up error naming the variable to set.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from common.secrets import ensure_secret
from common.signing_keys import (
    KeyConfigError,
    SigningKey,
    VerificationKey,
    eddsa_signing_key,
    eddsa_verification_key,
    ensure_dev_keypair,
    hs256_signing_key,
    jwks_document,
    verification_key_for,
)
from delivery.settings import DeliverySettings, SettingsError


def _read_file(path: Path, variable: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {str(path)!r}: {exc.strerror}") from None
    if not value:
        raise SettingsError(f"{variable}: {str(path)!r} is empty")
    return value


def _file_or_dev_secret(
    path: Path | None, dev_path: Path | None, variable: str, *, create: bool
) -> str | None:
    """The secret in ``path`` when configured, else in ``dev_path`` (the settings'
    ``effective_*_file``: None outside dev mode), generated there when ``create``."""
    if path is not None:
        return _read_file(path, variable)
    if dev_path is None:
        return None
    if create:
        return ensure_secret(dev_path)
    return _read_file(dev_path, variable) if dev_path.exists() else None


def user_jwt_secrets(settings: DeliverySettings, *, create: bool = True) -> list[bytes]:
    """HS256 secrets user tokens may be signed with (configured ones first)."""
    secrets = [s.encode() for s in settings.jwt_hs256_secrets]
    from_file = _file_or_dev_secret(
        settings.jwt_hs256_secret_file,
        settings.effective_jwt_secret_file,
        "DELIVERY_JWT_HS256_SECRET_FILE",
        create=create,
    )
    if from_file is not None:
        if len(from_file.encode()) < 32:
            raise SettingsError("DELIVERY_JWT_HS256_SECRET_FILE: the secret must be >= 32 bytes")
        secrets.append(from_file.encode())
    return list(dict.fromkeys(secrets))


def admin_tokens(settings: DeliverySettings, *, create: bool = True) -> list[str]:
    """Bearer tokens accepted on ``/v1/admin``; empty means the admin API is disabled."""
    tokens = list(settings.admin_tokens)
    from_file = _file_or_dev_secret(
        settings.admin_token_file,
        settings.effective_admin_token_file,
        "DELIVERY_ADMIN_TOKEN_FILE",
        create=create,
    )
    if from_file is not None:
        tokens.append(from_file)
    for token in tokens:
        if len(token) < 16:
            raise SettingsError("DELIVERY_ADMIN_TOKENS: each admin token must be >= 16 characters")
    return list(dict.fromkeys(tokens))


def stream_signing_key(settings: DeliverySettings) -> SigningKey:
    """The one active key for edge stream tokens (EdDSA from a PEM file, or HS256)."""
    if settings.signing_hs256_secret is not None:
        try:
            return hs256_signing_key(
                settings.signing_hs256_secret.get_secret_value(), settings.signing_kid
            )
        except KeyConfigError as exc:
            raise SettingsError(f"DELIVERY_SIGNING_HS256_SECRET: {exc}") from None
    path = settings.effective_signing_key_file
    if not path.exists() and settings.dev_mode and settings.signing_key_file is None:
        ensure_dev_keypair(settings.keys_dir)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        hint = (
            ""
            if settings.dev_mode
            else " (set DELIVERY_SIGNING_KEY_FILE to an Ed25519 private key PEM, or "
            "DELIVERY_SIGNING_HS256_SECRET; DELIVERY_DEV_MODE=true generates a dev key)"
        )
        raise SettingsError(
            f"DELIVERY_SIGNING_KEY_FILE: cannot read {str(path)!r}: {exc.strerror}{hint}"
        ) from None
    try:
        return eddsa_signing_key(pem, settings.signing_kid)
    except (KeyConfigError, ValueError, TypeError) as exc:
        raise SettingsError(f"DELIVERY_SIGNING_KEY_FILE: {exc}") from None


def stream_jwks(settings: DeliverySettings) -> dict:
    """The JWKS edges fetch (``EDGE_TOKEN_JWKS_URL``): the edge signer's Ed25519 public key
    plus ``DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS``. HS256 secrets are never published, so with
    ``DELIVERY_SIGNING_HS256_SECRET`` only the extra keys (usually none) are listed."""
    keys: list[VerificationKey] = []
    if settings.signer == "edge" and settings.signing_hs256_secret is None:
        keys.append(verification_key_for(stream_signing_key(settings)))
    for name in settings.signing_extra_public_keys:
        try:
            keys.append(eddsa_verification_key(Path(name).read_bytes()))
        except OSError as exc:
            raise SettingsError(
                f"DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS: cannot read {name!r}: {exc.strerror}"
            ) from None
        except (KeyConfigError, ValueError, TypeError) as exc:
            raise SettingsError(f"DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS: {name!r}: {exc}") from None
    unique = {k.kid: k for k in keys}
    return jwks_document(unique.values())


def nginx_secret(settings: DeliverySettings) -> str:
    if settings.nginx_secret is not None:
        return settings.nginx_secret.get_secret_value()
    value = _file_or_dev_secret(
        settings.nginx_secret_file,
        settings.secrets_dir / "nginx-secure-link" if settings.dev_mode else None,
        "DELIVERY_NGINX_SECRET_FILE",
        create=True,
    )
    if value is None:
        raise SettingsError("signer 'nginx' needs DELIVERY_NGINX_SECRET or _SECRET_FILE")
    return value


def cloudfront_private_key(settings: DeliverySettings) -> bytes:
    path = settings.cloudfront_private_key_file
    if path is None:
        raise SettingsError("DELIVERY_CLOUDFRONT_PRIVATE_KEY_FILE is not set")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"DELIVERY_CLOUDFRONT_PRIVATE_KEY_FILE: cannot read {str(path)!r}: {exc.strerror}"
        ) from None


def cloudcdn_key(settings: DeliverySettings) -> bytes:
    """The Cloud CDN signing key: base64url text, as ``gcloud compute sign-url`` takes it."""
    if settings.cloudcdn_key is not None:
        text = settings.cloudcdn_key.get_secret_value()
    elif settings.cloudcdn_key_file is not None:
        text = _read_file(settings.cloudcdn_key_file, "DELIVERY_CLOUDCDN_KEY_FILE")
    else:
        raise SettingsError("signer 'cloudcdn' needs DELIVERY_CLOUDCDN_KEY or _KEY_FILE")
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise SettingsError("DELIVERY_CLOUDCDN_KEY: not base64url text") from None
    if len(key) != 16:
        raise SettingsError(f"DELIVERY_CLOUDCDN_KEY: expected a 16-byte key, got {len(key)}")
    return key
