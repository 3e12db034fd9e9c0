"""The tokenizer of a GGUF model through llama.cpp, and the one place llama-cpp-python is imported.

Apart from the engine (`llamacpp`) because the remote engine needs it too, without any weights: a GGUF file's
vocabulary and chat template read with llama.cpp's vocab_only load (`load_tokenizer`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from alignbeam.engines import chat
from alignbeam.engines.base import Message, Tokenizer
from alignbeam.errors import ModelLoadError

_ATTR_SPECIAL = 1 | 2 | 8  # UNKNOWN | UNUSED | CONTROL
_backend_ready = False


def llama_lib() -> Any:
    """llama-cpp-python, its backend initialised once, imported here and not at module level: importing alignbeam
    must not load the shared library."""
    global _backend_ready
    import llama_cpp
    import llama_cpp._logger as llog

    if not _backend_ready:
        llog.logger.setLevel(logging.CRITICAL if not os.environ.get("ALIGNBEAM_LLAMA_VERBOSE") else logging.DEBUG)
        llama_cpp.llama_backend_init()
        _backend_ready = True
    return llama_cpp


class LlamaTokenizer(Tokenizer):
    """A GGUF model's vocabulary and chat template, read through llama.cpp."""

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
        return chat.render_for(self, messages, add_generation_prompt, self._bos_text, self._eos_text)


def load_tokenizer(path: str | os.PathLike[str]) -> LlamaTokenizer:
    """A GGUF file's tokenizer and chat template without its weights (llama.cpp's vocab_only load, well under a
    second): what the remote engine needs locally when the model itself runs on a server."""
    lib = llama_lib()
    mp = lib.llama_model_default_params()
    mp.vocab_only = True
    ptr = lib.llama_model_load_from_file(str(path).encode(), mp)
    if not ptr:
        raise ModelLoadError(f"llama.cpp could not read the tokenizer of {path}: the file is corrupt or not a GGUF")
    tok = LlamaTokenizer(lib, ptr)
    weakref.finalize(tok, lib.llama_model_free, ptr)  # the vocabulary lives as long as the tokenizer
    return tok
