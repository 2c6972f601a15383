"""The caching edge: verifies signed URLs, serves from memory/disk, fetches each miss once.

Modules, one concept each::

    app.py          the ASGI callable: routing, token check, lifecycle (EdgeApp, create_app)
    respond.py      answering an object request from memory, disk or a fill
    http.py         RFC 9110 range/conditional planning, header builders, JSON errors
    fill.py         single-flight, read-while-write fills shared across workers
    cache/          memory tier (LRU by bytes), disk tier (files + flock), entry format
    upstream/       where misses come from: HTTP origins/shields, or a store URL
    breaker.py      circuit breaker per upstream
    token.py        the stream-token format (shared with delivery)
    settings.py     EDGE_* settings, validated at start-up
    metrics.py      counters and the Prometheus exposition
    access_log.py   buffered JSON-lines access log
    cli.py          ``edge serve | sign``, and ``edge loadtest`` (the loadtest package)

See ``edge/README.md`` for running it, and :mod:`edge.fill` for what a client
sees when the upstream fails mid-transfer.
"""

__all__ = ["EdgeApp", "EdgeSettings", "create_app", "load_settings"]


def __getattr__(name: str):
    # Lazy, so ``import edge.token`` (all that delivery uses) stays light.
    if name in ("EdgeApp", "create_app"):
        from edge import app

        return getattr(app, name)
    if name in ("EdgeSettings", "load_settings"):
        from edge import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'edge' has no attribute {name!r}")
