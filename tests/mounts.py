"""A real tmpfs mounted for a test (needs root; skipped, or failed in CI, where it cannot be had)."""
from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def tmpfs(mnt: Path, options: str):
    """Mounts a tmpfs with `options` (e.g. "size=8m,mode=0700", "ro,size=1m") at mnt for the block."""
    from tests.conftest import _service_missing

    mnt.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        _service_missing(f"mounting a tmpfs ({options}; needs root)", RuntimeError(r.stderr.strip()))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
