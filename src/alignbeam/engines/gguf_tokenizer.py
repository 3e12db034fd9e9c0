"""A GGUF file's tokenizer rebuilt with the `tokenizers` package, for the gateway install (no llama.cpp).

It must encode exactly as the llama-server that runs the model (the prompt goes over the wire as token ids), so
it copies llama.cpp's choices (src/llama-vocab.cpp): the byte-level BPE of `tokenizer.ggml.model = gpt2`, the
pre-tokenizer regexes of `tokenizer.ggml.pre`, which tokens are parsed as markup (control and unknown tokens only
when asked; user-defined ones always), which end a generation (the same token texts llama.cpp recognises) and
pieces decoded from the byte-level alphabet. tests/unit/test_slim_tokenizers.py checks it against llama.cpp on
the embedded models.

Only pre-tokenizers whose llama.cpp decoding leaves spaces alone are rebuilt (`PRE_SPLITS`: Qwen2/2.5/3,
SmolLM, StarCoder and their kin); other GGUF vocabularies (SentencePiece ones such as Gemma's, Llama 3's) need
llama-cpp-python or a Hugging Face tokenizer folder, and the error says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as RustTokenizer

from alignbeam.engines.fast_tokenizer import FastTokenizer, Vocabulary
from alignbeam.engines.gguf_meta import read_metadata
from alignbeam.errors import ModelLoadError

_SMOLLM = (r"\p{N}", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)")
_QWEN2 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
)
#: `tokenizer.ggml.pre` -> llama.cpp's split regexes, applied in turn (only names whose decoding keeps spaces)
PRE_SPLITS: dict[str, tuple[str, ...]] = {
    "smollm": _SMOLLM,
    "qwen2": _QWEN2,
    "deepseek-r1-qwen": _QWEN2,
    "command-r": _SMOLLM,
}

# GGUF token types (llama.cpp's llama_token_type)
_UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED = 2, 3, 4, 5
#: token texts llama.cpp treats as end of generation (llama-vocab.cpp), FIM pad/repo/separator included
EOG_TEXTS = frozenset(
    [
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<|flush|>",
        "<|calls|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "</s>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        "[EOS]",
        "<|end_of_text|>",
        "<end_of_utterance>",
        "<eos>",
        "<turn|>",
        "<|tool_response>",
        "<｜end▁of▁sentence｜>",
        "[e~[",
        "<|fim_pad|>",
        "<fim-pad>",
        "<fim_pad>",
        "<PAD>",
        "[PAD]",
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
        "<|file_sep|>",
    ]
)
#: end-of-turn texts, first found wins (llama.cpp's EOT detection, the order LlamaTokenizer prefers <|im_end|>)
EOT_TEXTS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the printable character that stands for each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _piece_bytes(text: str, ttype: int) -> bytes:
    """A token's bytes as llama.cpp's token_to_piece gives them: user-defined tokens as written, the others
    mapped back from the byte-level alphabet."""
    if ttype == _USER_DEFINED:
        return text.encode("utf-8")
    table = _byte_decoder()
    return bytes(table[c] for c in text if c in table)


def load_tokenizer(path: str | os.PathLike[str]) -> FastTokenizer:
    """The tokenizer and chat template of the GGUF file at `path`, read without llama.cpp (see the module)."""
    meta = read_metadata(path, "tokenizer.")
    kind, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "default")
    if kind != "gpt2" or pre not in PRE_SPLITS:
        raise ModelLoadError(
            f"the tokenizer of {os.path.basename(path)} ({kind}, pre-tokenizer '{pre}') is read without llama.cpp "
            f"only for the pre-tokenizers {', '.join(sorted(PRE_SPLITS))}: pip install 'alignbeam[llamacpp]', or "
            "name the model's Hugging Face tokenizer folder after '@' in the model URL"
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    types = [int(t) for t in meta["tokenizer.ggml.token_type"]]
    vocab = _vocabulary(meta, tokens, types)
    rust = _bpe(tokens, types, meta["tokenizer.ggml.merges"], PRE_SPLITS[pre])
    pieces = [b"" if i in vocab.special else _piece_bytes(t, ty) for i, (t, ty) in enumerate(zip(tokens, types))]

    def decode(ids: Sequence[int]) -> str:
        return b"".join(pieces[i] for i in ids if 0 <= i < len(pieces)).decode("utf-8", errors="replace")

    return FastTokenizer(rust, vocab, decode)


def _vocabulary(meta: dict, tokens: list[str], types: list[int]) -> Vocabulary:
    """Special, end-of-generation and end-of-turn ids, BOS and the template, as llama.cpp derives them."""
    ids = {t: i for i, t in reversed(list(enumerate(tokens)))}
    eos = meta.get("tokenizer.ggml.eos_token_id")
    bos = meta.get("tokenizer.ggml.bos_token_id")
    eog = {ids[t] for t in EOG_TEXTS if t in ids} | {i for i in (eos, meta.get("tokenizer.ggml.eot_token_id")) if i}
    special = {i for i, ty in enumerate(types) if ty in (_UNKNOWN, _CONTROL, _UNUSED)} | eog
    eot = meta.get("tokenizer.ggml.eot_token_id")
    if eot is None:
        eot = next((ids[t] for t in EOT_TEXTS if t in ids), eos)
    return Vocabulary(
        vocab_size=len(tokens),
        special=frozenset(special),
        eog_ids=frozenset(eog),
        eot_id=int(eot if eot is not None else -1),
        bos_id=bos,
        add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)) and bos is not None,
        chat_template=meta.get("tokenizer.chat_template"),
        bos_text=tokens[bos] if bos is not None else "",
        eos_text=tokens[eos] if eos is not None else "",
    )


def _bpe(tokens: list[str], types: list[int], merges: list[str], splits: tuple[str, ...]) -> RustTokenizer:
    """Byte-level BPE with llama.cpp's pre-tokenizer: each regex splits the pieces of the one before (isolated),
    then bytes map to the byte-level alphabet; control, unknown and user-defined tokens are added tokens."""
    vocab = {t: i for i, t in reversed(list(enumerate(tokens)))}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    rust = RustTokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    rust.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    rust.decoder = decoders.ByteLevel()
    added = [
        AddedToken(t, special=ty != _USER_DEFINED, normalized=False)
        for t, ty in zip(tokens, types)
        if ty in (_UNKNOWN, _CONTROL, _USER_DEFINED) or t in EOG_TEXTS
    ]
    rust.add_tokens(added)
    return rust
