"""The import rules of docs/architecture.md, checked on the source: encoder -> origin,
edge -> origin, delivery -> origin and edge.token only; origin imports none of them;
nothing imports delivery. ``common`` (shared serving pieces) may be imported by every
part and imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("origin", "encoder", "edge", "delivery", "common")

# For each package: the other project packages (or exact modules) it may import.
ALLOWED = {
    "origin": {"common"},
    "encoder": {"origin", "common"},
    "edge": {"origin", "common"},
    "delivery": {"origin", "edge.token", "common"},
    "common": set(),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            allowed = ALLOWED[package]
            if top in allowed or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            # "from edge import token" is recorded as both "edge" and "edge.token".
            if name == top and any(a.startswith(top + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    assert violations(package) == []


def test_checker_sees_a_violation(tmp_path):
    # Guard against a checker that passes everything.
    fake = tmp_path / "origin"
    fake.mkdir()
    (fake / "bad.py").write_text("from delivery.app import create_app\nimport edge.fill\n")
    found = violations("origin", tmp_path)
    assert "origin/bad.py imports delivery.app" in found
    assert "origin/bad.py imports edge.fill" in found


def test_common_imports_no_part(tmp_path):
    fake = tmp_path / "common"
    fake.mkdir()
    (fake / "bad.py").write_text("from origin.keys import parse_key\n")
    assert "common/bad.py imports origin.keys" in violations("common", tmp_path)
