"""GGUF models through llama-cpp-python's low-level API: the fast CPU path.

One llama context per model holds every open session as its own sequence id in a unified KV cache, so a
fork is a KV copy inside llama.cpp (`llama_memory_seq_cp`), a truncation is `llama_memory_seq_rm`, and
`step` decodes the next tokens of many sessions in one `llama_decode` call. Only the last token of each
sequence asks for logits, and they are read with `llama_get_logits_ith` (the high-level `Llama.eval` no longer
fills scores unless every position's logits are kept, which costs gigabytes).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignbeam.engines.base import ModelInfo, Session, Snapshot
from alignbeam.engines.llamacpp_tokenizer import LlamaTokenizer, llama_lib
from alignbeam.engines.local import LocalModel, LocalSession
from alignbeam.errors import AlignBeamError, ContextOverflowError, EngineBusyError, ModelLoadError


class LlamaSession(LocalSession):
    """One llama.cpp sequence id in the model's unified KV cache."""

    model: LlamaCppModel

    def __init__(self, model: LlamaCppModel, seq_id: int) -> None:
        super().__init__(model)
        self.seq_id = seq_id

    def fork(self) -> LlamaSession:
        self.check_open()
        m = self.model
        child = m.new_session()
        m._lib.llama_memory_seq_cp(m._mem, self.seq_id, child.seq_id, -1, -1)
        child.tokens = list(self.tokens)
        child.next_logits = self.next_logits
        return child

    def drop_kv(self, n: int) -> None:
        m = self.model
        if not m._lib.llama_memory_seq_rm(m._mem, self.seq_id, n, -1):
            raise AlignBeamError("llama.cpp could not truncate this sequence (recurrent or windowed KV cache)")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.model.release(self.seq_id)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def default_threads() -> tuple[int, int]:
    """(decode threads, prefill threads) when the user sets none: every core but one, for both. llama.cpp's
    threads spin while they wait for each other, so a step on every core stalls whenever anything else (the
    server's event loop, the OS, another job) takes one of them: on 2 cores next to one busy process, decoding on
    both cores was 3x slower than on one (about 100x with a bigger model). Splitting (one core to decode, all to
    prefill) was slower than either, idle and busy (benchmarks/threads.py, docs/performance.md).
    `ALIGNBEAM_N_THREADS` sets it for every model (a dedicated host can take every core back)."""
    env = os.environ.get("ALIGNBEAM_N_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ModelLoadError(f"ALIGNBEAM_N_THREADS={env!r}: give a whole number of threads, at least 1")
        return int(env), int(env)
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    n = max(1, cores - 1)
    return n, n


class LlamaCppModel(LocalModel[LlamaSession]):
    """A GGUF model in llama.cpp. `n_ctx` bounds one sequence; `n_ctx_total` bounds all open sessions together.

    Memory defaults (measured on the paper-shaped pair, Qwen2.5-Coder 1.5B + 0.5B: peak RSS 2.69 GB -> 1.90 GB for
    1.53 GB of model files): the weights are read into memory instead of memory-mapped (`use_mmap=False`): with
    mmap, llama.cpp's CPU weight repacking kept both the mapped file pages and the repacked copy resident (2.0 GB
    RSS for a 1.07 GB file). `n_ubatch=128` sizes the compute buffer (its logits tensor is n_ubatch x vocabulary);
    prefill speed was the same as at 512. The KV cache holds 4096 tokens for all sessions together: forks share
    their prompt's cells, so that is the prompt plus K x max_new_tokens; raise `n_ctx_total` for longer work.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        n_ctx: int = 4096,
        n_ctx_total: int | None = None,
        n_seq_max: int = 16,
        n_batch: int = 512,
        n_ubatch: int = 128,
        n_threads: int | None = None,
        n_gpu_layers: int = -1,
        use_mmap: bool = False,
        repack: bool = True,
        n_outputs_max: int | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        _check_memory(path)
        lib = llama_lib()
        self._lib = lib
        self._model = _load_weights(lib, path, n_gpu_layers, use_mmap, repack)
        n_train = lib.llama_model_n_ctx_train(self._model)
        n_ctx = min(n_ctx, n_train) if n_train > 0 else n_ctx
        total = n_ctx_total or max(n_ctx, 4096)
        cp = _context_params(lib, total, n_batch, n_ubatch, n_seq_max, n_threads, n_outputs_max)
        self._ctx = lib.llama_init_from_model(self._model, cp)
        if not self._ctx:
            lib.llama_model_free(self._model)
            raise ModelLoadError(f"llama.cpp could not create a context for {path} (out of memory?)")
        self._mem = lib.llama_get_memory(self._ctx)
        self._n_batch = n_batch
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self._free_ids = list(range(n_seq_max - 1, -1, -1))
        self._n_seq_max = n_seq_max
        self.tokenizer = LlamaTokenizer(lib, self._model)
        self._n_vocab = self.tokenizer.vocab_size
        self.info = ModelInfo(
            name=name or path.stem,
            engine="llamacpp",
            path=str(path),
            n_ctx=n_ctx,
            n_params=int(lib.llama_model_n_params(self._model)),
        )
        self._total_ctx = total

    @property
    def kv_capacity(self) -> int | None:
        return self._total_ctx

    @property
    def max_sessions(self) -> int | None:
        return self._n_seq_max

    @property
    def free_sessions(self) -> int | None:
        return len(self._free_ids)

    # -- sessions ---------------------------------------------------------------------------------
    def snapshot(self, session: Session) -> Snapshot:
        """The sequence's KV cells copied out of llama.cpp (a few MB for a 100-token head): no slot stays held."""
        assert isinstance(session, LlamaSession) and session.model is self
        session.check_open()
        logits = session.logits()
        size = self._lib.llama_state_seq_get_size(self._ctx, session.seq_id)
        buf = (ctypes.c_uint8 * size)()
        n = self._lib.llama_state_seq_get_data(self._ctx, buf, size, session.seq_id)
        if n == 0:
            return Snapshot(list(session.tokens), None)
        return Snapshot(list(session.tokens), (bytes(buf)[:n], logits.copy()))

    def restore(self, snap: Snapshot) -> LlamaSession:
        if snap.state is None:
            return self.session(snap.tokens)
        data, logits = snap.state  # type: ignore[misc]
        s = self.new_session()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self._lib.llama_state_seq_set_data(self._ctx, buf, len(data), s.seq_id) == 0:
            s.close()  # llama.cpp refused the state (no room in the cache): prefill instead
            return self.session(snap.tokens)
        s.fed(snap.tokens, logits.copy())  # a caller may write into the array it is handed
        return s

    def new_session(self) -> LlamaSession:
        if not self._free_ids:
            raise EngineBusyError(
                f"all {self._n_seq_max} llama.cpp sequence slots of {self.name} are in use: retry when running "
                "requests finish, or load the model with a larger n_seq_max"
            )
        return LlamaSession(self, self._free_ids.pop())

    def release(self, seq_id: int) -> None:
        """Give a closed session's sequence id back, its KV cells cleared."""
        if getattr(self, "_ctx", None):
            self._lib.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            self._free_ids.append(seq_id)

    # -- batched decoding -------------------------------------------------------------------------
    def step(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> None:
        """Feed all sessions' tokens through as few `llama_decode` calls as the batch size allows."""
        work = self.step_work(sessions, tokens)
        # Flatten into (session, token, position, wants_logits) entries, then decode in chunks.
        entries = [(s, tok, len(s.tokens) + i, i == len(t) - 1) for s, t in work for i, tok in enumerate(t)]
        b = self._batch
        lib = self._lib
        for start in range(0, len(entries), self._n_batch):
            chunk = entries[start : start + self._n_batch]
            for i, (s, tok, pos, want) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = s.seq_id
                b.logits[i] = want
            b.n_tokens = len(chunk)
            rc = lib.llama_decode(self._ctx, b)
            if rc == 1:
                raise ContextOverflowError(
                    f"{self.info.name}: the KV cache ({self._total_ctx} tokens for all open sessions) is full; "
                    "close sessions or load the model with a larger n_ctx_total"
                )
            if rc != 0:
                raise AlignBeamError(f"llama_decode failed with code {rc}")
            for i, (s, tok, _pos, want) in enumerate(chunk):
                logits = None
                if want:
                    ptr = lib.llama_get_logits_ith(self._ctx, i)
                    logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()
                s.fed([tok], logits)

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._lib.llama_model_free(self._model)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _load_weights(lib: Any, path: Path, n_gpu_layers: int, use_mmap: bool, repack: bool) -> Any:
    """The model's weights loaded by llama.cpp (its model pointer); `ModelLoadError` when it cannot read them."""
    mp = lib.llama_model_default_params()
    mp.n_gpu_layers = n_gpu_layers
    mp.load_mode = lib.LLAMA_LOAD_MODE_MMAP if use_mmap else lib.LLAMA_LOAD_MODE_NONE
    mp.use_extra_bufts = repack
    model = lib.llama_model_load_from_file(str(path).encode(), mp)
    if not model:
        raise ModelLoadError(
            f"llama.cpp could not load {path}: the file is corrupt, truncated, or of an architecture this "
            "llama-cpp-python build does not support (set ALIGNBEAM_LLAMA_VERBOSE=1 to see llama.cpp's log)."
        )
    return model


def _context_params(
    lib: Any,
    total: int,
    n_batch: int,
    n_ubatch: int,
    n_seq_max: int,
    n_threads: int | None,
    n_outputs_max: int | None,
) -> Any:
    """llama.cpp's context settings: one unified KV cache of `total` cells for every sequence (see the class)."""
    cp = lib.llama_context_default_params()
    cp.n_ctx = total
    cp.n_batch = n_batch
    cp.n_ubatch = min(n_ubatch, n_batch)
    cp.n_seq_max = n_seq_max
    if n_outputs_max is not None:
        cp.n_outputs_max = n_outputs_max
    cp.kv_unified = True  # every sequence may use the whole cache, so forks of a long prompt fit
    cp.swa_full = True  # keep full KV for sliding-window layers, otherwise truncation is impossible
    cp.n_threads, cp.n_threads_batch = default_threads() if n_threads is None else (n_threads, n_threads)
    cp.no_perf = True
    return cp


def _check_memory(path: Path) -> None:
    import psutil

    need = path.stat().st_size
    avail = psutil.virtual_memory().available
    if need > avail * 0.95:
        raise ModelLoadError(
            f"{path.name} needs about {need / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB of memory is free: "
            "close other programs or pick a smaller model"
        )
