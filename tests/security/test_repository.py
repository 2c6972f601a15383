"""The repository stands alone: a clone with nothing beside it must run every test.

Nothing tracked may read or link a workspace folder beside the checkout
or a path that only exists on one particular machine (a home or workspace
directory). System locations every Debian machine has (``/usr``, ``/tmp``,
``/proc``, ``/etc``) are fine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Built from pieces so this file does not match itself.
_OUTSIDE = re.compile(
    r"\.\./" + r"shared\b"  # a workspace beside the checkout
    r"|(?<![\w.])/(?:" + "work|home|Users|root" + r")/"  # one machine's dirs
    r"|[A-Za-z]:\\" + r"Users\\"  # a Windows profile
)


def tracked_files(root: Path) -> list[Path]:
    """Files git tracks (or would, for a tree that is not a checkout)."""
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "data", "__pycache__", ".pytest_cache", ".ruff_cache"}
        return [
            p for p in root.rglob("*") if p.is_file() and not skip & set(p.relative_to(root).parts)
        ]
    return [root / name for name in out.decode().split("\0") if name]


def references_outside(root: Path) -> list[str]:
    found = []
    for path in tracked_files(root):
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (images)
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return found


def test_no_tracked_file_refers_outside_the_repository():
    assert references_outside(ROOT) == []


@pytest.mark.parametrize(
    "line",
    [
        'VECTORS = Path("../' + 'shared/vectors/signing.json")',
        "see ../" + "shared/DESIGN.md",
        'Path("/' + 'work/shared/vectors")',
        "cd /" + "home/alice/project",
        "C:" + r"\Users\bob\repo",
    ],
)
def test_the_check_sees_an_outside_reference(tmp_path, line):
    (tmp_path / "module.py").write_text(f"{line}\n")
    assert len(references_outside(tmp_path)) == 1


@pytest.mark.parametrize(
    "line",
    ["/usr/bin/chromium", "/usr/lib/postgresql", "/tmp/x", "/etc/passwd", "/proc/self/status"],
)
def test_system_paths_are_fine(tmp_path, line):
    (tmp_path / "module.py").write_text(f"{line}\n")
    assert references_outside(tmp_path) == []


def test_the_docs_the_readme_links_exist():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):
        assert (ROOT / target).exists(), target
    assert (ROOT / "docs" / "architecture.md").is_file()
