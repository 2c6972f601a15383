"""An origin behind ``httpx.MockTransport`` that injects upstream faults on demand.

It speaks the origin contract (Bearer pull token, ETag, X-Checksum-SHA256 of
the whole object, ``Range: bytes=N-`` resumes) and records every request, so a
test can count upstream fetches exactly. Faults are queued and each one is
consumed by one request; without a queued fault the object is served whole.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from tests.edge.conftest import PULL_TOKEN


@dataclass
class Fault:
    status: int | None = None  # answer with this status and no body
    raise_exc: type[Exception] | None = None  # raise before any response (connect/timeout)
    reset_after: int | None = None  # send this many body bytes, then the connection breaks
    short_after: int | None = None  # send this many body bytes, then end cleanly (short body)
    corrupt: bool = False  # flip one byte in the body (X-Checksum-SHA256 stays right)
    gate_after: int | None = None  # send this many bytes, then wait for FakeOrigin.gate


class FakeOrigin:
    def __init__(self, objects: dict[str, bytes], chunk: int = 16 * 1024) -> None:
        self.objects = objects
        self.chunk = chunk
        self.faults: list[Fault] = []
        self.requests: list[httpx.Request] = []
        self.gate = asyncio.Event()
        self.state_sha = True
        self.down = False  # True: every request, health probes included, fails to connect

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def object_requests(self, key: str | None = None) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.url.path.startswith("/tracks/") and
            (key is None or r.url.path == "/" + key)
        ]  # fmt: skip

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("origin down", request=request)
        if request.url.path in ("/healthz", "/readyz"):
            return httpx.Response(200, json={"status": "ok"})
        if request.headers.get("authorization") != f"Bearer {PULL_TOKEN}":
            return httpx.Response(401)
        fault = self.faults.pop(0) if self.faults else Fault()
        if fault.raise_exc is not None:
            raise fault.raise_exc("injected", request=request)
        if fault.status is not None:
            return httpx.Response(fault.status, json={"error": "injected"})
        key = request.url.path[1:]
        data = self.objects.get(key)
        if data is None:
            return httpx.Response(404)
        digest = hashlib.sha256(data).hexdigest()
        headers = {
            "content-type": "audio/ogg",
            "etag": f'"{digest[:32]}"',
            "last-modified": "Thu, 26 Nov 2026 10:00:00 GMT",
        }
        if self.state_sha:
            headers["x-checksum-sha256"] = digest
        start, status = 0, 200
        rng = request.headers.get("range")
        if rng:
            start = int(rng.removeprefix("bytes=").removesuffix("-"))
            status = 206
            headers["content-range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if fault.corrupt:
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
        headers["content-length"] = str(len(body))
        return httpx.Response(status, headers=headers, content=self._stream(body, fault))

    async def _stream(self, body: bytes, fault: Fault) -> AsyncIterator[bytes]:
        sent = 0
        for i in range(0, len(body), self.chunk):
            piece = body[i : i + self.chunk]
            for limit, action in (
                (fault.reset_after, "reset"),
                (fault.short_after, "short"),
                (fault.gate_after, "gate"),
            ):
                if limit is not None and sent + len(piece) > limit:
                    head = piece[: limit - sent]
                    if head:
                        yield head
                        sent += len(head)
                    piece = piece[len(head) :]
                    if action == "reset":
                        raise httpx.ReadError("connection reset by peer (injected)")
                    if action == "short":
                        return
                    await self.gate.wait()
                    fault.gate_after = None
            if piece:
                yield piece
                sent += len(piece)
            await asyncio.sleep(0)
