"""Where alignbeam keeps files of its own: one per-user cache folder, and the one message for when it is unusable.

Kept apart from the model store (`alignbeam.store`) because more than the store writes there: the bridge tables
(`method/bridge.py`) and the transformers engine's converted GGUF copies (`engines/hf.py`) live in the same
folder, and neither should have to import the store to find it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import platformdirs

#: overrides the cache folder (CI, shared machines, tests)
CACHE_ENV = "ALIGNBEAM_CACHE"


def cache_dir() -> Path:
    """Per-user cache; `ALIGNBEAM_CACHE` overrides it (CI, shared machines, tests). Missing parents are created."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("alignbeam"))


def cache_problem(path: Path, err: OSError) -> str:
    """One line saying why `path` (inside the cache) cannot be created or written, and what to do about it."""
    root = cache_dir()
    where = f"{CACHE_ENV}={root}" if os.environ.get(CACHE_ENV) else f"the cache directory {root}"
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = f"{blocker} is a file, not a directory"
    elif err.errno == errno.EROFS:
        what = f"{path} is on a read-only file system"
    elif err.errno in (errno.EACCES, errno.EPERM):
        what = f"{path} is not writable (permission denied)"
    elif err.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"no space left on the device holding {path}"
    else:
        what = f"{path}: {err.strerror or err}"
    return f"cannot write to {where}: {what}. Set {CACHE_ENV} to a writable directory."
