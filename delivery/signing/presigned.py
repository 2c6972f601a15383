"""``s3`` / ``gcs`` signers: presigned URLs straight from the bucket, through the store.

The store backend owns its SDK (SigV4 forced for S3, v4 for GCS), so this
signer only asks it: ``store.presigned_url(key, expires_s)``. These URLs cannot
be bound to a client address; :func:`delivery.signing.registry.build_signer`
refuses the combination at start-up.
"""

from __future__ import annotations

from delivery.signing.port import SigningError, UrlRequest
from origin.errors import StoreError
from origin.store import ObjectStore, store_scheme

_SCHEMES = {"s3": ("s3",), "gcs": ("gs", "gcs")}


class StorePresignedSigner:
    def __init__(self, name: str, store: ObjectStore) -> None:
        if name not in _SCHEMES:
            raise SigningError(f"no presigned signer {name!r}")
        if store_scheme(store.url) not in _SCHEMES[name]:
            raise SigningError(
                f"signer {name!r} presigns through the store, but DELIVERY_STORE is "
                f"{store_scheme(store.url)}://"
            )
        presign = getattr(store, "presigned_url", None)
        if presign is None:
            raise SigningError(f"the {type(store).__name__} backend cannot presign URLs")
        self.name = name
        self._presign = presign

    def sign(self, request: UrlRequest) -> str:
        try:
            return self._presign(request.key, max(1, request.ttl_s))
        except (ValueError, StoreError) as exc:
            raise SigningError(f"cannot presign {request.key!r}: {exc}") from None
