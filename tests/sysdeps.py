"""Debian packages the tests need (postgresql, mosquitto, curl): installed once when missing.

Only as root on a machine with apt-get; parallel xdist workers wait on a file lock while one of
them installs, then find the program themselves."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["ensure_debian_package"]


def ensure_debian_package(package: str, find: Callable[[], str | None]) -> str | None:
    """``find()`` (the program's path or None); if None, ``apt-get install package`` and look again."""
    found = find()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    import fcntl

    lock = Path(tempfile.gettempdir()) / f"wb-tests-{package}-install.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            found = find()
            if found:
                return found
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], env=env,
                           check=False, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return find()
