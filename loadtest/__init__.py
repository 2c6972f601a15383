"""The load tester: simulated listeners playing tracks through an edge (``edge loadtest``).

Tooling, not runtime: it may import :mod:`edge` and :mod:`origin`, and nothing
but the ``edge`` command line imports it (``tests/test_architecture.py``).

    run.py      the listeners, signed-URL source, results and report table
    client.py   a lean keep-alive HTTP/1.1 GET client (httpx costs more than the edge)
    cli.py      arguments, their checks, ``main`` (``edge loadtest`` / ``python -m loadtest``)
"""
