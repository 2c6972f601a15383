"""An asyncio transport that keeps what a protocol writes: a server's protocol driven by
hand, with no socket and no timing."""

from __future__ import annotations


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []  # one entry per write() / writelines() call
        self.closed = False

    @property
    def written(self) -> bytes:
        """Everything written so far, as one byte string."""
        return b"".join(self.writes)

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts) -> None:
        self.writes.append(b"".join(bytes(p) for p in parts))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...
