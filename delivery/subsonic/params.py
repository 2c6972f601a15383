"""A Subsonic request's parameters: query string and form body, bounded, read by name.

Clients send the same parameters as a query string (GET) or as a form body (POST,
``application/x-www-form-urlencoded``; OpenSubsonic's ``formPost``), and repeat a name to
pass a list (``id=a&id=b``). Both are merged here, in order. A request carries at most
:data:`MAX_VALUES` values of at most :data:`MAX_VALUE_CHARS` characters each; anything more
is refused before any handler runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from delivery.subsonic.errors import SubsonicError, invalid, missing

MAX_VALUES = 1000
MAX_VALUE_CHARS = 2048
MAX_LIST = 500  # values of one repeated parameter (ids to star, songs to add, ...)
_INT = re.compile(r"-?[0-9]{1,16}")


class Params:
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        count = 0
        for name, value in pairs:
            count += 1
            if count > MAX_VALUES:
                raise SubsonicError(0, f"Too many parameters (at most {MAX_VALUES})")
            if len(value) > MAX_VALUE_CHARS or len(name) > 64:
                raise invalid(name[:64], f"longer than {MAX_VALUE_CHARS} characters")
            self._values.setdefault(name, []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def first(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._values.items()}

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def all(self, name: str) -> list[str]:
        values = self._values.get(name, [])
        if len(values) > MAX_LIST:
            raise invalid(name, f"at most {MAX_LIST} values")
        return list(values)

    def integers(self, name: str, low: int, high: int) -> list[int]:
        """Every value of a repeated whole-number parameter, each within ``low..high``."""
        out = []
        for raw in self.all(name):
            if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
                raise invalid(name, f"expected whole numbers from {low} to {high}")
            out.append(int(raw))
        return out

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
            raise invalid(name, f"expected a whole number from {low} to {high}")
        return int(raw)

    def required_int(self, name: str, low: int, high: int) -> int:
        value = self.integer(name, None, low, high)
        if value is None:
            raise missing(name)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise invalid(name, "expected true or false")
