"""Where a cache miss is fetched from: origin servers / parent edges over HTTP, or a store.

The port is :class:`Upstream`: ``await fetch(key, start, etag)`` returns an
:class:`UpstreamBody` (metadata of the WHOLE object plus an async iterator of
its bytes from ``start``) or raises one of :mod:`edge.errors`' ``Upstream*``.

* :class:`HttpUpstream` pulls ``GET {base}/{key}`` with ``Authorization: Bearer
  <pull token>`` from one or more bases (origin servers or parent edges acting
  as shields). Rendezvous hashing on the key ranks the bases, so each object
  has one home shield (its cache holds it once) and the next one takes over
  when it fails. Connect errors, timeouts and 5xx are retried a bounded number
  of times with jittered exponential backoff; each base has a circuit breaker.
  The client is an ``httpx.AsyncClient``, so tests put ``httpx.MockTransport``
  behind it to inject faults.
* :class:`StoreUpstream` reads a store URL (``file://``, ``s3://``, ``gs://``)
  directly through :func:`origin.store.open_store`, in worker threads.
"""

from edge.upstream.http import HttpUpstream, http_client
from edge.upstream.port import (
    Upstream,
    UpstreamBody,
    backoff_delay,
    default_etag,
    rendezvous_order,
)
from edge.upstream.store import StoreUpstream

__all__ = [
    "HttpUpstream",
    "StoreUpstream",
    "Upstream",
    "UpstreamBody",
    "backoff_delay",
    "default_etag",
    "http_client",
    "rendezvous_order",
]
