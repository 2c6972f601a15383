"""Development secrets: generated once at first run, stored with mode 0600, never in the repo.

Production deployments pass their secrets through the environment or mounted
files; these helpers only make ``make run`` work on a fresh machine without a
hard-coded key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULT_SECRETS_DIR = Path("data") / "secrets"
DEFAULT_PULL_TOKEN_FILE = DEFAULT_SECRETS_DIR / "pull-token"


def write_secret_file(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (never readable by others)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_secret(path: str | Path, nbytes: int = 32) -> str:
    """The secret stored at ``path``; a random one (hex, mode 0600) is created at first use.

    Two processes racing at first start may both generate one; the rename makes
    the last writer win and both then read the same file.
    """
    path = Path(path)
    if not path.exists():
        write_secret_file(path, secrets.token_hex(nbytes).encode(), 0o600)
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"secret file {str(path)!r} is empty")
    return value
