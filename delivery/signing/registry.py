"""The one place a signer is chosen: ``DELIVERY_SIGNER`` -> a :class:`UrlSigner`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from delivery import credentials
from delivery.settings import DeliverySettings, SettingsError
from delivery.signing.cloudcdn import CloudCdnSigner
from delivery.signing.cloudfront import CloudFrontSigner
from delivery.signing.edge import EdgeTokenSigner
from delivery.signing.memo import MemoizedSigner
from delivery.signing.nginx import NginxSecureLinkSigner
from delivery.signing.port import SigningError, UrlSigner
from delivery.signing.presigned import StorePresignedSigner
from delivery.signing.routed import RoutedSigner
from origin.store import ObjectStore

log = logging.getLogger("delivery.signing")


def _edge(settings: DeliverySettings, store: ObjectStore) -> UrlSigner:
    return EdgeTokenSigner(settings.edge_url, credentials.stream_signing_key(settings))


def _nginx(settings: DeliverySettings, store: ObjectStore) -> UrlSigner:
    if settings.bind_client_ip and "$remote_addr" not in settings.nginx_expression:
        raise SettingsError(
            "DELIVERY_BIND_CLIENT_IP needs $remote_addr in DELIVERY_NGINX_EXPRESSION"
        )
    return NginxSecureLinkSigner(
        settings.edge_url, credentials.nginx_secret(settings), settings.nginx_expression
    )


def _cloudfront(settings: DeliverySettings, store: ObjectStore) -> UrlSigner:
    return CloudFrontSigner(
        settings.edge_url,
        settings.cloudfront_key_pair_id or "",
        credentials.cloudfront_private_key(settings),
        policy=settings.cloudfront_policy,
        ip_prefix_v4=settings.cloudfront_ip_prefix_v4,
        ip_prefix_v6=settings.cloudfront_ip_prefix_v6,
    )


def _cloudcdn(settings: DeliverySettings, store: ObjectStore) -> UrlSigner:
    if settings.bind_client_ip:
        raise SettingsError("Cloud CDN signed URLs cannot be bound to a client address")
    return CloudCdnSigner(
        settings.edge_url,
        settings.cloudcdn_key_name or "",
        credentials.cloudcdn_key(settings),
        mode=settings.cloudcdn_mode,
    )


def _presigned(name: str) -> Callable[[DeliverySettings, ObjectStore], UrlSigner]:
    def build(settings: DeliverySettings, store: ObjectStore) -> UrlSigner:
        if settings.bind_client_ip:
            raise SettingsError(f"{name} presigned URLs cannot be bound to a client address")
        return StorePresignedSigner(name, store)

    return build


SIGNERS: dict[str, Callable[[DeliverySettings, ObjectStore], UrlSigner]] = {
    "edge": _edge,
    "nginx": _nginx,
    "cloudfront": _cloudfront,
    "cloudcdn": _cloudcdn,
    "s3": _presigned("s3"),
    "gcs": _presigned("gcs"),
}


def build_signer(
    settings: DeliverySettings,
    store: ObjectStore,
    edge_up: Callable[[str], bool] = lambda url: True,
) -> UrlSigner:
    """The configured signer; raise :class:`SettingsError` when it cannot work.

    With several edges (``DELIVERY_EDGE_URLS``) it is a :class:`RoutedSigner` over one
    signer per edge, routing by ``edge_up`` (:class:`delivery.edge_health.EdgeHealth`).
    With ``DELIVERY_URL_REUSE_S`` each edge's signer is a :class:`MemoizedSigner`.
    """
    try:
        factory = SIGNERS[settings.signer]
    except KeyError:
        raise SettingsError(f"DELIVERY_SIGNER: unknown signer {settings.signer!r}") from None
    edges = settings.edges
    if len(edges) > 1 and settings.signer in ("s3", "gcs"):
        raise SettingsError(
            f"DELIVERY_EDGE_URLS: the {settings.signer} signer presigns bucket URLs, "
            "it has no edges to route between"
        )

    def for_edge(url: str) -> UrlSigner:
        signer = factory(settings.model_copy(update={"edge_url": url}), store)
        # Under the routing, so a reused URL always points at the edge routing picks now.
        reuse_s = settings.effective_url_reuse_s
        return MemoizedSigner(signer, reuse_s) if reuse_s else signer

    try:
        if len(edges) == 1:
            return for_edge(edges[0].url)
        signers = {e.url: for_edge(e.url) for e in edges}
    except SigningError as exc:
        raise SettingsError(f"DELIVERY_SIGNER={settings.signer}: {exc}") from None
    return RoutedSigner(signers, edges, edge_up)
