"""The bounds of one server (no heavy imports: settings modules read the defaults).

See :mod:`common.serving` for what each bound means and how it is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 5.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# A body on a part that never reads one (GET/HEAD only) is refused past this.
GET_ONLY_MAX_BODY_BYTES = 64 * 1024
# Body bytes still arriving after the response are discarded up to this, then we close.
DRAIN_MAX_BYTES = 64 * 1024

REASONS = (
    "headers_too_large",
    "header_timeout",
    "idle_timeout",
    "body_too_large",
    "body_timeout",
)


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of one server; ``part`` names its metrics (``edge`` -> ``edge_...``)."""

    part: str
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_body_bytes: int | None = None

    def __post_init__(self) -> None:
        positive = ("max_header_bytes", "header_timeout_s", "idle_timeout_s", "body_timeout_s")
        for name in (*positive, "max_connections"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.max_body_bytes is not None and self.max_body_bytes < 0:
            raise ValueError("max_body_bytes cannot be negative")

    @classmethod
    def from_settings(
        cls, part: str, settings: Any, max_body_bytes: int | None = None
    ) -> ConnectionLimits:
        """The limits a part's settings name (``max_header_bytes``, ``header_timeout_s``,
        ``idle_timeout_s``, ``body_timeout_s``, ``max_connections``: the same fields in
        every part)."""
        return cls(
            part,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
            max_body_bytes=max_body_bytes,
        )

    @property
    def first_byte_timeout_s(self) -> float:
        return min(self.idle_timeout_s, self.header_timeout_s)

    @property
    def sweep_interval_s(self) -> float:
        return min(max(self.first_byte_timeout_s / 4, 0.05), 1.0)
