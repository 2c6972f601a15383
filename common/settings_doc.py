"""The README's settings tables, generated from the settings models themselves.

Each setting is described once, in its model (``Field(description=...)``); the
README shows that description. Between ``<!-- settings: NAME -->`` and
``<!-- /settings -->`` the README holds :func:`settings_table` of the model
registered under NAME, and ``python -m scripts.settings_tables`` rewrites the
blocks (``--check`` only compares, which a test does), so the two cannot drift.

A field may set ``json_schema_extra={"shown_default": "..."}`` when its real
default is computed (``WEB_CONCURRENCY``, a path under the data directory) and
the README should say how, rather than print this machine's value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

BLOCK = re.compile(
    r"(<!-- settings: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /settings -->)", re.S
)


class UndescribedSetting(ValueError):
    """A settings field without a description: it would be an undocumented variable."""


def shown_default(field, name: str = "this setting") -> str:
    """The README's "default" cell of ``field``: ``shown_default`` if given, else its default.

    A default computed at run time (``default_factory``) must say how in ``shown_default``:
    this machine's value would be wrong on the next one.
    """
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "shown_default" in extra:
        return str(extra["shown_default"])
    if field.default_factory is not None:
        raise UndescribedSetting(
            f"{name} has a computed default: describe it with "
            'json_schema_extra={"shown_default": "..."}'
        )
    default = field.default
    if default is PydanticUndefined or default is None:
        return "unset"
    if isinstance(default, SecretStr):
        return "unset"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, (list, tuple, set, frozenset)):
        return "`" + ",".join(str(v) for v in default) + "`" if default else "empty"
    if isinstance(default, Path):
        text = str(default)
        return f"`{text if default.is_absolute() or text.startswith('.') else './' + text}`"
    if default == "":
        return "empty"
    if isinstance(default, float) and default.is_integer():
        default = int(default)  # `10`, not `10.0`: the variable takes either
    return f"`{default}`"


def settings_table(model: type[BaseModel], prefix: str) -> str:
    """``| variable | default | meaning |`` rows, one per field, in declaration order."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        if not field.description:
            raise UndescribedSetting(f"{variable} has no description")
        description = " ".join(field.description.split()).replace("|", "\\|")
        rows.append(f"| `{variable}` | {shown_default(field, variable)} | {description} |")
    return "\n".join(rows) + "\n"


def rewrite(text: str, tables: Mapping[str, Callable[[], str]]) -> str:
    """``text`` with every settings block replaced by its generated table."""

    def replace(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in tables:
            raise KeyError(f"README settings block {name!r} names no settings model")
        return m.group(1) + tables[name]() + m.group(4)

    return BLOCK.sub(replace, text)


def block_names(text: str) -> list[str]:
    return [m.group("name") for m in BLOCK.finditer(text)]


def problems(text: str, tables: Mapping[str, Callable[[], str]]) -> list[str]:
    """What is wrong with the settings blocks of ``text``, one line each (empty: in sync).

    A block naming no registered table, a registered table without a block, a name
    used twice, and a block whose table is not what the model renders now (stale).
    """
    names = block_names(text)
    found = [f"settings block {n!r} names no settings model" for n in names if n not in tables]
    found += [
        f"settings block {n!r} appears twice" for n in sorted(set(names)) if names.count(n) > 1
    ]
    found += [f"no settings block for {n!r}" for n in tables if n not in names]
    for m in BLOCK.finditer(text):
        name = m.group("name")
        if name in tables and m.group("body") != tables[name]():
            found.append(f"settings block {name!r} is stale")
    return found
