"""Signed URLs for our edge and for real CDNs (see :mod:`delivery.signing.port`)."""

from delivery.signing.port import SigningError, UrlRequest, UrlSigner
from delivery.signing.registry import SIGNERS, build_signer

__all__ = ["SIGNERS", "SigningError", "UrlRequest", "UrlSigner", "build_signer"]
