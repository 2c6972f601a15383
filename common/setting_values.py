"""Value forms and error wording shared by every part's settings (ORIGIN_, EDGE_, DELIVERY_ ...).

The edge and delivery both read lists from comma-separated variables and both
report bad variables as ``PREFIX_NAME: message`` lines; keeping those here (origin
is the one package they both import) means an operator sees the same forms and
the same wording whichever process refuses to start.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ValidationError
from pydantic_settings import NoDecode

# NoDecode: pydantic-settings would otherwise expect JSON for a list variable.
CommaList = Annotated[list[str], NoDecode]


def split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; anything not a string passes through for pydantic."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def setting_error_lines(exc: ValidationError, prefix: str) -> list[str]:
    """One ``PREFIX_NAME: message`` line per failed check, naming the environment variable."""
    lines = []
    for err in exc.errors():
        loc = "_".join(str(p) for p in err.get("loc", ()) if isinstance(p, str))
        name = f"{prefix}_{loc.upper()}" if loc else f"{prefix} settings"
        lines.append(f"{name}: {err.get('msg')}")
    return lines
