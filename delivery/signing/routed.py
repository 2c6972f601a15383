"""A signer over several edges: the chosen edge's signer signs (delivery.edge_routing)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from delivery.edge_routing import Edge, choose_edge
from delivery.signing.port import UrlRequest, UrlSigner


class RoutedSigner:
    """A :class:`UrlSigner` over several edges: one inner signer per edge base URL."""

    def __init__(
        self,
        signers: dict[str, UrlSigner],
        edges: Sequence[Edge],
        healthy: Callable[[str], bool],
    ) -> None:
        self._signers = signers
        self.edges = tuple(edges)
        self._healthy = healthy
        self.name = next(iter(signers.values())).name

    def sign(self, request: UrlRequest) -> str:
        edge = choose_edge(request.key, self.edges, request.region, self._healthy)
        return self._signers[edge.url].sign(request)
