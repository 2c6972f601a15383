"""Bounds of every number a request may carry.

Python integers are unbounded; the databases' are not (SQLite raises
``OverflowError`` past 2**63 - 1, a 500 that also drops the keep-alive
connection). So every integer a route accepts — query, path or JSON body — is
declared with a minimum and a maximum, either here or with ``Query(ge=, le=)``:
a value outside is a 400 ``invalid_request`` before any code sees it, and the
bounds are in the OpenAPI document (``tests/security/test_delivery_input.py``
checks that no integer parameter lacks them). Non-finite and fractional JSON
numbers are refused by the integer type itself.

Where the service knows a tighter bound (a playlist's length, a configured
maximum), it still checks and answers with its own code (``invalid_position``,
``invalid_limit``...); these bounds only keep values in the range every layer
can represent.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# 9999-12-31T23:59:59.999Z: the last instant RFC 3339 (and our iso_ms) can show.
EPOCH_MS_MAX = 253_402_300_799_999

# Positions, counts, lengths: wide enough for any playlist, narrow enough for any column.
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
# A time in milliseconds since the epoch, 1970 to the year 9999.
EpochMs = Annotated[int, Field(ge=0, le=EPOCH_MS_MAX)]


def epoch_ms_in_range(ms: int) -> bool:
    return 0 <= ms <= EPOCH_MS_MAX
