"""A GGUF file's key-value metadata (its tokenizer and chat template), read without llama.cpp.

The gateway install has no llama-cpp-python, yet a remote model named by an embedded name or a .gguf file needs
that file's vocabulary locally. `gguf.GGUFReader` reads the whole file's structure, element by element (about 11 s
for Qwen2.5's 152k-token vocabulary); this reads only the metadata section, strings in one pass and numeric arrays
as numpy views, in well under a second. The value types are the `gguf` package's.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Any

import numpy as np
from gguf import GGUFValueType as T

from alignbeam.errors import ModelLoadError

_SCALARS: dict[T, str] = {
    T.UINT8: "<B",
    T.INT8: "<b",
    T.UINT16: "<H",
    T.INT16: "<h",
    T.UINT32: "<I",
    T.INT32: "<i",
    T.FLOAT32: "<f",
    T.BOOL: "<?",
    T.UINT64: "<Q",
    T.INT64: "<q",
    T.FLOAT64: "<d",
}


class _Cursor:
    """Reads little-endian values from a buffer, front to back."""

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def scalar(self, fmt: str) -> Any:
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.scalar("<Q")
        s = bytes(self.buf[self.pos : self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def value(self, vtype: T) -> Any:
        if vtype == T.STRING:
            return self.string()
        if vtype == T.ARRAY:
            etype, count = T(self.scalar("<I")), self.scalar("<Q")
            if etype in _SCALARS:
                dtype = np.dtype(_SCALARS[etype])
                arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos).copy()
                self.pos += dtype.itemsize * count
                return arr
            return [self.value(etype) for _ in range(count)]
        return self.scalar(_SCALARS[vtype])


def read_metadata(path: str | os.PathLike[str], prefix: str = "") -> dict[str, Any]:
    """The metadata entries of the GGUF file at `path` whose keys start with `prefix` (numeric arrays as numpy
    arrays, string arrays as lists); the tensors are never read."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm, memoryview(mm) as mv:
            return _read(mv, prefix)
    except (OSError, ValueError, struct.error) as e:
        raise ModelLoadError(f"could not read the GGUF metadata of {path}: {e}") from e


def _read(buf: memoryview, prefix: str) -> dict[str, Any]:
    cur = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    cur.pos = 4
    version = cur.scalar("<I")
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old (2 or later)")
    cur.scalar("<Q")  # tensor count
    n_kv = cur.scalar("<Q")
    out: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        value = cur.value(T(cur.scalar("<I")))
        if key.startswith(prefix):
            out[key] = value
    return out
