"""A TCP fault proxy between a real edge process and a real origin process.

It runs its own event loop in a thread, forwards each connection to the
origin (forcing ``Connection: close`` so every request gets its own
connection) and applies one queued :class:`NetFault` per object request:

* ``status``       answer with that HTTP status itself (the origin is not asked)
* ``blackhole``    accept and never answer (the edge's read timeout fires)
* ``reset_after``  forward N body bytes, then reset the connection (RST)
* ``close_after``  forward N body bytes, then close cleanly (FIN): a short body
* ``corrupt_at``   flip the body byte at offset N (headers, incl. the sha, untouched)
* ``gate_after``   forward N body bytes, then hold until :attr:`FaultProxy.gate` is set

It records every request line, so tests count upstream fetches exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

from tests.support.waiting import wait_for_async


@dataclass
class NetFault:
    status: int | None = None
    blackhole: bool = False
    reset_after: int | None = None
    close_after: int | None = None
    corrupt_at: int | None = None
    gate_after: int | None = None


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[NetFault] = []
        self.requests: list[str] = []
        self.gate = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = fut.result(10)
        return self

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.gate.set()

        async def shutdown():
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def object_requests(self) -> list[str]:
        return [r for r in self.requests if " /tracks/" in r]

    # -- one connection ----------------------------------------------------------------

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter):
        try:
            head = await creader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            cwriter.close()
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.requests.append(line)
        fault = NetFault()
        if " /tracks/" in line and self.faults:
            fault = self.faults.pop(0)
        try:
            if fault.status is not None:
                cwriter.write(
                    f"HTTP/1.1 {fault.status} Injected\r\ncontent-type: application/json\r\n"
                    f"content-length: 2\r\nconnection: close\r\n\r\n{{}}".encode()
                )
                await cwriter.drain()
                return
            if fault.blackhole:
                await creader.read()  # until the edge gives up and closes
                return
            await self._forward(head, cwriter, fault)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                cwriter.close()

    async def _forward(self, head: bytes, cwriter: asyncio.StreamWriter, fault: NetFault):
        lines = [x for x in head[:-4].split(b"\r\n") if not x.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines) + b"\r\nconnection: close\r\n\r\n"
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            uwriter.write(request)
            await uwriter.drain()
            response_head = await ureader.readuntil(b"\r\n\r\n")
            cwriter.write(response_head)
            sent = 0  # body bytes forwarded
            while True:
                chunk = await ureader.read(16 * 1024)
                if not chunk:
                    break
                if fault.corrupt_at is not None and sent <= fault.corrupt_at < sent + len(chunk):
                    i = fault.corrupt_at - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                for limit in (fault.reset_after, fault.close_after, fault.gate_after):
                    if limit is not None and sent + len(chunk) > limit:
                        break
                else:
                    limit = None
                if limit is not None:
                    cwriter.write(chunk[: limit - sent])
                    await cwriter.drain()
                    rest, sent = chunk[limit - sent :], limit
                    if limit == fault.reset_after:
                        sock = cwriter.get_extra_info("socket")
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        cwriter.transport.abort()
                        return
                    if limit == fault.close_after:
                        return
                    await wait_for_async(
                        self.gate.is_set, what="the test to open the proxy's gate", timeout=60
                    )
                    fault.gate_after = None
                    chunk = rest
                cwriter.write(chunk)
                await cwriter.drain()
                sent += len(chunk)
        finally:
            uwriter.close()
