"""GGUF models through llama-cpp-python's low-level API: the fast CPU path.

One llama context per model holds every open session as its own sequence id in a unified KV cache, so a
fork is a KV copy inside llama.cpp (`llama_memory_seq_cp`), a truncation is `llama_memory_seq_rm`, and
`step` decodes the next tokens of many sessions in one `llama_decode` call. Only the last token of each
sequence asks for logits, and they are read with `llama_get_logits_ith` (the high-level `Llama.eval` no longer
fills scores unless every position's logits are kept, which costs gigabytes).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alignbeam.engines import chat
from alignbeam.engines.base import Message, Model, ModelInfo, Session, Snapshot, Tokenizer
from alignbeam.errors import AlignBeamError, ContextOverflowError, EngineBusyError, ModelLoadError

_ATTR_SPECIAL = 1 | 2 | 8  # UNKNOWN | UNUSED | CONTROL
_backend_ready = False


def _lib():  # imported lazily: importing alignbeam must not load the shared library
    global _backend_ready
    import llama_cpp
    import llama_cpp._logger as llog

    if not _backend_ready:
        llog.logger.setLevel(logging.CRITICAL if not os.environ.get("ALIGNBEAM_LLAMA_VERBOSE") else logging.DEBUG)
        llama_cpp.llama_backend_init()
        _backend_ready = True
    return llama_cpp


class LlamaTokenizer(Tokenizer):
    def __init__(self, lib, model_ptr) -> None:
        self._lib = lib
        self._vocab = lib.llama_model_get_vocab(model_ptr)
        self._buf = (lib.llama_token * 4096)()
        self._buf_lock = threading.Lock()  # the buffer is shared: remote models tokenize from several threads
        v = self._vocab
        self.n_tokens = lib.llama_vocab_n_tokens(v)
        self.vocab_size = self.n_tokens
        bos = lib.llama_vocab_bos(v)
        self.bos_id = bos if bos >= 0 else None
        self.add_bos = bool(lib.llama_vocab_get_add_bos(v)) and self.bos_id is not None
        eos, eot = lib.llama_vocab_eos(v), lib.llama_vocab_eot(v)
        self.eog_ids = frozenset(i for i in range(self.n_tokens) if lib.llama_vocab_is_eog(v, i))
        self._special = (
            frozenset(i for i in range(self.n_tokens) if lib.llama_vocab_get_attr(v, i) & _ATTR_SPECIAL) | self.eog_ids
        )
        im_end = self.encode("<|im_end|>", parse_special=True)
        if len(im_end) == 1 and im_end[0] in self._special:
            self.eot_id = im_end[0]
        else:
            self.eot_id = eot if eot >= 0 else eos
        tmpl = lib.llama_model_chat_template(model_ptr, None)
        self.chat_template = tmpl.decode("utf-8") if tmpl else None
        self._bos_text = self._piece(self.bos_id, special=True) if self.bos_id is not None else ""
        self._eos_text = self._piece(eos, special=True) if eos >= 0 else ""
        self._texts: list[str] | None = None

    def _piece(self, tok: int, special: bool = False) -> str:
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._vocab, tok, buf, 256, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, tok, buf, -n, 0, special)
        return buf.raw[:n].decode("utf-8", errors="replace")

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        with self._buf_lock:
            return self._encode(text, parse_special)

    def _encode(self, text: str, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = max(len(self._buf), len(data) + 8)
        if cap > len(self._buf):
            self._buf = (self._lib.llama_token * cap)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), self._buf, cap, False, parse_special)
        if n < 0:
            self._buf = (self._lib.llama_token * (-n))()
            n = self._lib.llama_tokenize(self._vocab, data, len(data), self._buf, -n, False, parse_special)
        return list(self._buf[:n])

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        ids = [i for i in ids if i not in self._special]
        if not ids:
            return b""
        arr = (self._lib.llama_token * len(ids))(*ids)
        cap = 16 * len(ids) + 16
        buf = ctypes.create_string_buffer(cap)
        n = self._lib.llama_detokenize(self._vocab, arr, len(ids), buf, cap, False, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_detokenize(self._vocab, arr, len(ids), buf, -n, False, False)
        return buf.raw[:n]

    def decode(self, ids: Sequence[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_texts(self) -> list[str]:
        if self._texts is None:
            self._texts = ["" if i in self._special else self._piece(i) for i in range(self.n_tokens)]
        return self._texts

    def special_ids(self) -> frozenset[int]:
        return self._special

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        messages = chat.validate_messages(messages)
        template = self.chat_template
        if template is None:
            has_chatml = len(self.encode("<|im_start|>", parse_special=True)) == 1
            template = chat.CHATML if has_chatml else chat.PLAIN
        return chat.render(template, messages, add_generation_prompt, self._bos_text, self._eos_text)


class LlamaSession(Session):
    def __init__(self, model: LlamaCppModel, seq_id: int) -> None:
        self.model = model
        self.seq_id = seq_id
        self.tokens = []
        self._logits: np.ndarray | None = None
        self._closed = False

    def logits(self) -> np.ndarray:
        self._check()
        if self._logits is None:
            if not self.tokens:
                raise AlignBeamError("an empty session has no next-token logits: extend it with a prompt first")
            last = self.tokens[-1]
            self.truncate(len(self.tokens) - 1)
            self.extend([last])
        assert self._logits is not None
        return self._logits

    def extend(self, tokens: Sequence[int]) -> None:
        self._check()
        if tokens:
            self.model.step([self], [tokens])

    def fork(self) -> LlamaSession:
        self._check()
        m = self.model
        child = m._new_session()
        m._lib.llama_memory_seq_cp(m._mem, self.seq_id, child.seq_id, -1, -1)
        child.tokens = list(self.tokens)
        child._logits = self._logits
        return child

    def truncate(self, n: int) -> None:
        self._check()
        if n < 0 or n > len(self.tokens):
            raise ValueError(f"cannot truncate a session of {len(self.tokens)} tokens to {n}")
        if n == len(self.tokens):
            return
        m = self.model
        if not m._lib.llama_memory_seq_rm(m._mem, self.seq_id, n, -1):
            raise AlignBeamError("llama.cpp could not truncate this sequence (recurrent or windowed KV cache)")
        del self.tokens[n:]
        self._logits = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.model._release(self.seq_id)

    def _check(self) -> None:
        if self._closed:
            raise AlignBeamError("this session was closed")

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


class LlamaCppModel(Model):
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
        lib = _lib()
        self._lib = lib
        mp = lib.llama_model_default_params()
        mp.n_gpu_layers = n_gpu_layers
        mp.load_mode = lib.LLAMA_LOAD_MODE_MMAP if use_mmap else lib.LLAMA_LOAD_MODE_NONE
        mp.use_extra_bufts = repack
        self._model = lib.llama_model_load_from_file(str(path).encode(), mp)
        if not self._model:
            raise ModelLoadError(
                f"llama.cpp could not load {path}: the file is corrupt, truncated, or of an architecture this "
                "llama-cpp-python build does not support (set ALIGNBEAM_LLAMA_VERBOSE=1 to see llama.cpp's log)."
            )
        n_train = lib.llama_model_n_ctx_train(self._model)
        n_ctx = min(n_ctx, n_train) if n_train > 0 else n_ctx
        total = n_ctx_total or max(n_ctx, 4096)
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
    def session(self, tokens: Sequence[int] = ()) -> LlamaSession:
        s = self._new_session()
        if tokens:
            s.extend(tokens)
        return s

    def snapshot(self, session: Session) -> Snapshot:
        """The sequence's KV cells copied out of llama.cpp (a few MB for a 100-token head): no slot stays held."""
        assert isinstance(session, LlamaSession) and session.model is self
        session._check()
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
        s = self._new_session()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self._lib.llama_state_seq_set_data(self._ctx, buf, len(data), s.seq_id) == 0:
            s.close()  # llama.cpp refused the state (no room in the cache): prefill instead
            return self.session(snap.tokens)
        s.tokens = list(snap.tokens)
        s._logits = logits.copy()  # a caller may write into the array it is handed
        return s

    def _new_session(self) -> LlamaSession:
        if not self._free_ids:
            raise EngineBusyError(
                f"all {self._n_seq_max} llama.cpp sequence slots of {self.name} are in use: retry when running "
                "requests finish, or load the model with a larger n_seq_max"
            )
        return LlamaSession(self, self._free_ids.pop())

    def _release(self, seq_id: int) -> None:
        if getattr(self, "_ctx", None):
            self._lib.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            self._free_ids.append(seq_id)

    # -- batched decoding -------------------------------------------------------------------------
    def step(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> None:
        """Feed all sessions' tokens through as few `llama_decode` calls as the batch size allows."""
        work: list[tuple[LlamaSession, list[int]]] = []
        for s, t in zip(sessions, tokens, strict=True):
            assert isinstance(s, LlamaSession) and s.model is self
            s._check()
            if t:
                if len(s.tokens) + len(t) > self.info.n_ctx:
                    raise ContextOverflowError(
                        f"{len(s.tokens) + len(t)} tokens do not fit in {self.info.name}'s context of "
                        f"{self.info.n_ctx}: shorten the prompt or lower max_new_tokens"
                    )
                work.append((s, [int(x) for x in t]))
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
                s.tokens.append(tok)
                if want:
                    ptr = lib.llama_get_logits_ith(self._ctx, i)
                    s._logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()
                else:
                    s._logits = None

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


def _check_memory(path: Path) -> None:
    import psutil

    need = path.stat().st_size
    avail = psutil.virtual_memory().available
    if need > avail * 0.95:
        raise ModelLoadError(
            f"{path.name} needs about {need / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB of memory is free: "
            "close other programs or pick a smaller model"
        )


def load_tokenizer(path: str | os.PathLike[str]) -> LlamaTokenizer:
    """A GGUF file's tokenizer and chat template without its weights (llama.cpp's vocab_only load, well under a
    second): what the remote engine needs locally when the model itself runs on a server."""
    lib = _lib()
    mp = lib.llama_model_default_params()
    mp.vocab_only = True
    ptr = lib.llama_model_load_from_file(str(path).encode(), mp)
    if not ptr:
        raise ModelLoadError(f"llama.cpp could not read the tokenizer of {path}: the file is corrupt or not a GGUF")
    tok = LlamaTokenizer(lib, ptr)
    weakref.finalize(tok, lib.llama_model_free, ptr)  # the vocabulary lives as long as the tokenizer
    return tok
