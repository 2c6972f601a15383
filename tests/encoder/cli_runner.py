"""Run ``encoder.cli`` as a subprocess, the way operators and the other parts call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_encoder(*args, cwd=None, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """``python -m encoder.cli *args`` with the repo importable and ``env`` added.

    ``timeout`` only stops a hung child from hanging the suite; it is no assertion.
    """
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "encoder.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
