"""Run a part's installed command with bad settings, and check how it refuses them.

The contract (README, "Configuration"): every bad value stops the command before it
does anything, with exit status 2, one line on stderr per bad value naming the
variable (or the option it came from), and no traceback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.servers import VENV_BIN

PREFIXES = ("ORIGIN_", "EDGE_", "ENCODER_", "DELIVERY_")


def run_with_settings(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess:
    """``argv[0]`` from the virtualenv with only ``env`` among the parts' variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    return subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,  # a setting wrongly accepted would start a server: fail, not hang
    )


def assert_refused(result: subprocess.CompletedProcess, prefix: str, *names: str) -> list[str]:
    """Exit 2, exactly one ``prefix`` line per name (in any order), each naming it."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(names), lines
    assert all(line.startswith(prefix) for line in lines), lines
    for name in names:
        assert sum(f" {name}: " in line for line in lines) == 1, (name, lines)
    assert result.stdout == ""
    return lines
