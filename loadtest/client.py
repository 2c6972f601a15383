"""A minimal keep-alive HTTP/1.1 GET client for the load tester.

A general client (httpx) spends far more CPU per request than an edge does
per response, so a load test driven by it measures the client. This one does
only what the load test needs: GET with a few headers over pooled keep-alive
connections, bodies framed by Content-Length (what the edge always sends) or
by connection close, and it times the response head (TTFB) and the body.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

READ_CHUNK = 256 * 1024


class LoadClientError(Exception):
    """A request that failed below HTTP (connect, reset, timeout, bad framing)."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    nbytes: int
    ttfb: float
    latency: float


class LoadClient:
    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, str, int], list[tuple]] = {}
        self._ssl = ssl.create_default_context()

    async def _connect(self, scheme: str, host: str, port: int):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=self._ssl if scheme == "https" else None
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Reply:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._get(url, headers or {})
        except TimeoutError:
            raise LoadClientError("Timeout") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise LoadClientError(type(exc).__name__) from exc

    async def _get(self, url: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname or ""
        pool_key = (scheme, host, port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: audiocdn-loadtest"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        idle = self._idle.setdefault(pool_key, [])
        reused = bool(idle)
        reader, writer = idle.pop() if idle else await self._connect(scheme, host, port)
        started = time.perf_counter()
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                if not reused:
                    raise
                # The server closed an idle keep-alive connection: retry once on a new one.
                writer.close()
                reader, writer = await self._connect(scheme, host, port)
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            ttfb = time.perf_counter() - started
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            reply_headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                reply_headers[name.strip().lower()] = value.strip()
            length = reply_headers.get("content-length")
            nbytes = 0
            if length is not None:
                remaining = int(length)
                while remaining:
                    chunk = await reader.read(min(READ_CHUNK, remaining))
                    if not chunk:
                        raise asyncio.IncompleteReadError(b"", remaining)
                    nbytes += len(chunk)
                    remaining -= len(chunk)
            elif "chunked" in reply_headers.get("transfer-encoding", ""):
                raise ValueError("chunked responses are not supported by the load client")
            else:
                while chunk := await reader.read(READ_CHUNK):
                    nbytes += len(chunk)
                reply_headers["connection"] = "close"
            latency = time.perf_counter() - started
        except BaseException:
            writer.close()
            raise
        if reply_headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            idle.append((reader, writer))
        return Reply(status, reply_headers, nbytes, ttfb, latency)

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()
