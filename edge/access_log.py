"""JSON-lines access log, buffered so the hot path only appends a string to a list.

One line per response, for example::

    {"ts":1764284000.123,"method":"GET","path":"/tracks/a/0123456789abcdef/160.ogg",
     "status":206,"range":"bytes=0-65535","bytes":65536,"cache":"HIT",
     "ip":"127.0.0.1","ms":0.21}

``request_id`` is the client's ``X-Request-Id`` (when well-formed) or one the edge
made (:mod:`common.request_wrapper`, which writes these lines through
``EdgeApp._access_line``); it is also sent upstream on the fill the request starts.
``error`` is added for refused or failed requests (the stable error code) and
``aborted: true`` when a body was cut short (see :mod:`edge.fill`). The token is
never logged. Lines are written by a flush task every 250 ms (and when 512 are
pending), in writes of whole lines of at most PIPE_BUF bytes, so workers sharing
one stdout pipe never interleave inside a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

from edge.tasks import cancel_and_wait

PIPE_BUF = 4096  # Linux's value (POSIX guarantees at least 512)


def _json_str(value: str | None) -> str:
    if value is None:
        return "null"
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value)


class AccessLog:
    def __init__(self, fd: int | None, *, owns_fd: bool = False, flush_s: float = 0.25) -> None:
        self._fd = fd
        self._owns_fd = owns_fd
        self._flush_s = flush_s
        self._lines: list[str] = []
        self._task: asyncio.Task | None = None

    @classmethod
    def open(cls, destination: str) -> AccessLog:
        """``-`` for stdout, ``off`` for nothing, anything else is a file appended to."""
        if destination.strip().lower() in ("off", "none", ""):
            return cls(None)
        if destination == "-":
            return cls(sys.stdout.fileno())
        fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return cls(fd, owns_fd=True)

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def record(
        self,
        ts: float,
        method: str,
        path: str,
        status: int,
        range_header: str | None,
        nbytes: int,
        cache: str | None,
        ip: str | None,
        ms: float,
        error: str | None = None,
        aborted: bool = False,
        path_checked: bool = False,
        request_id: str | None = None,
    ) -> None:
        """Queue one line. ``path_checked``: the path is a validated object key (plain ASCII)."""
        if self._fd is None:
            return
        # Anything client-supplied is escaped so a hostile request cannot forge or break a
        # line; validated paths, our codes and GET/HEAD need no escaping.
        m = '"GET"' if method == "GET" else '"HEAD"' if method == "HEAD" else _json_str(method)
        p = f'"{path}"' if path_checked else _json_str(path)
        c = f'"{cache}"' if cache else "null"
        line = (
            f'{{"ts":{ts:.3f},"method":{m},"path":{p},"status":{status},'
            f'"range":{_json_str(range_header)},"bytes":{nbytes},"cache":{c},'
            f'"ip":{_json_str(ip)},"ms":{ms:.2f}'
        )
        if request_id is not None:
            # Request ids are validated to [A-Za-z0-9._:-] (common.logs), safe to write raw.
            line += f',"request_id":"{request_id}"'

        if error is not None:
            line += f',"error":"{error}"'
        if aborted:
            line += ',"aborted":true'
        self._lines.append(line + "}\n")
        if len(self._lines) >= 512:
            self.flush()

    def record_hit(
        self,
        ts: float,
        method: str,
        path: str,
        status: int,
        range_header: str | None,
        nbytes: int,
        ip: str | None,
        ms: float,
        request_id: str,
    ) -> None:
        """:meth:`record` of a memory hit answered by :mod:`edge.server` (the same line),
        formatted in one go: the method is GET or HEAD, the path a cached key, the request
        id validated, and nothing failed."""
        self._lines.append(
            f'{{"ts":{ts:.3f},"method":"{method}","path":"{path}","status":{status},'
            f'"range":{_json_str(range_header)},"bytes":{nbytes},"cache":"HIT",'
            f'"ip":{_json_str(ip)},"ms":{ms:.2f},"request_id":"{request_id}"}}\n'
        )
        if len(self._lines) >= 512:
            self.flush()

    def flush(self) -> None:
        if not self._lines or self._fd is None:
            return
        lines, self._lines = self._lines, []
        # Several workers may share one stdout pipe: a write of at most PIPE_BUF bytes is
        # atomic there, so batches of whole lines that fit never interleave mid-line.
        batch: list[str] = []
        size = 0
        with contextlib.suppress(OSError):
            for line in lines:
                if size + len(line) > PIPE_BUF and batch:
                    self._write("".join(batch).encode())
                    batch, size = [], 0
                batch.append(line)
                size += len(line)
            if batch:
                self._write("".join(batch).encode())

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]  # type: ignore[arg-type]

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            self.flush()

    def start(self) -> None:
        if self._fd is not None and self._task is None:
            self._task = asyncio.create_task(self._flusher())

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.flush()
        if self._owns_fd and self._fd is not None:
            os.close(self._fd)
            self._fd = None
