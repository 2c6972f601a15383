"""Stand-in HTTP servers inside the test process: a JWKS, a failing backend, a fake edge ...

:class:`StubServer` serves a :class:`QuietHandler` subclass from a daemon thread on
127.0.0.1 until :meth:`StubServer.stop` (or the end of its ``with`` block).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (the test's output stays readable)."""

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A complete answer: status, Content-Type, Content-Length and ``body`` (not to HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class StubServer:
    """``handler`` on 127.0.0.1:``port`` (0: any free port), served by a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: shutdown() returns within 50 ms instead of 500.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
