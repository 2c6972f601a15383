"""A clock a test moves by hand: pass it where the code takes ``clock=`` and set ``now``."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
