"""The edge package's error tree.

Everything the edge raises on purpose is an :class:`EdgeError`; the HTTP layer
(:mod:`edge.app`) maps each one to a status and a stable ``code`` in one place::

    EdgeError
    ├── EdgeConfigError        a setting that cannot work (raised at start-up, loudly)
    ├── UpstreamError          the object could not be obtained from upstream
    │   ├── UpstreamNotFound       the upstream has no such object          -> 404
    │   ├── UpstreamRejected       the upstream refused our pull token      -> 502
    │   ├── UpstreamUnavailable    connect errors, timeouts, 5xx after retries -> 502
    │   ├── CircuitOpen            every upstream's breaker is open         -> 503
    │   └── FillIntegrityError     size or sha256 of a fill did not verify  -> 502
    └── ResponseAborted        raised inside a response that has already started, so the
                               server drops the connection before Content-Length is reached

Token failures are :class:`edge.token.TokenError` (always 403) and are not
repeated here.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge raises on purpose."""

    status = 500
    code = "edge_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EdgeConfigError(EdgeError, ValueError):
    code = "config_error"


class UpstreamError(EdgeError):
    status = 502
    code = "upstream_error"


class UpstreamNotFound(UpstreamError):
    status = 404
    code = "object_not_found"


class UpstreamRejected(UpstreamError):
    status = 502
    code = "upstream_rejected"


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class CircuitOpen(UpstreamError):
    status = 503
    code = "upstream_circuit_open"


class FillIntegrityError(UpstreamError):
    status = 502
    code = "upstream_integrity"


class ResponseAborted(EdgeError):
    """The response cannot be completed; the connection must be dropped.

    Raised only after ``http.response.start`` was sent. uvicorn then closes the
    transport, so the client receives fewer bytes than ``Content-Length`` and
    knows the body is incomplete (see :mod:`edge.fill`).
    """

    code = "response_aborted"
