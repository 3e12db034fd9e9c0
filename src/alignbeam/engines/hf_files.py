"""A Hugging Face model's tokenizer read from its files with the `tokenizers` package, for the gateway install.

transformers (and torch behind it) is not installed there, yet a remote model named with a Hugging Face tokenizer
(`http://gpu-1:8000/v1#specialist@/models/specialist`) must be encoded locally exactly as transformers would:
`tokenizer.json` is what transformers' fast tokenizer runs too; `tokenizer_config.json` (or `chat_template.jinja`)
gives the chat template, BOS/EOS and whether BOS is added; `config.json` and `generation_config.json` the
vocabulary size and the end-of-generation ids, as `engines.hf.load_hf_tokenizer` reads them. A hub id is read from
the local Hugging Face cache, never downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as RustTokenizer

from alignbeam.engines.fast_tokenizer import FastTokenizer, Vocabulary
from alignbeam.errors import ModelLoadError
from alignbeam.store import ResolvedModel

_EOG_MARKERS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>")
_EOT_MARKERS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>")


def _folder(resolved: ResolvedModel) -> Path:
    """The folder holding the tokenizer files: the folder itself, or a hub id's snapshot in the local cache."""
    if resolved.kind != "hf-hub":
        return Path(resolved.path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(resolved.path, local_files_only=True))
    except Exception as e:  # the hub library raises several kinds for "not in the cache"
        raise ModelLoadError(
            f"'{resolved.spec}' is not in the local Hugging Face cache ({type(e).__name__}): download its tokenizer "
            "files first (huggingface-cli download ... tokenizer.json tokenizer_config.json config.json)"
        ) from e


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(folder: Path, config: dict[str, Any]) -> str | None:
    """The default chat template: chat_template.jinja, or tokenizer_config.json's (a string or named list)."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    tmpl = config.get("chat_template")
    if isinstance(tmpl, list):
        tmpl = next((t.get("template") for t in tmpl if isinstance(t, dict) and t.get("name") == "default"), None)
    return tmpl if isinstance(tmpl, str) else None


def load_tokenizer(resolved: ResolvedModel) -> FastTokenizer:
    """The tokenizer and chat template of a Hugging Face folder or cached hub id, without transformers."""
    folder = _folder(resolved)
    if not (folder / "tokenizer.json").is_file():
        raise ModelLoadError(
            f"{folder} has no tokenizer.json (a slow-only tokenizer): without transformers the gateway install "
            "reads tokenizer.json only; pip install 'alignbeam[hf]' to read it with transformers"
        )
    rust = RustTokenizer.from_file(str(folder / "tokenizer.json"))
    config = _json(folder / "tokenizer_config.json")
    vocab = _vocabulary(rust, config, _json(folder / "config.json"), _json(folder / "generation_config.json"))
    vocab = Vocabulary(**{**vocab.__dict__, "chat_template": _chat_template(folder, config)})
    size = rust.get_vocab_size(with_added_tokens=True)

    def decode(ids: Sequence[int]) -> str:
        return rust.decode([i for i in ids if 0 <= i < size], skip_special_tokens=False)

    return FastTokenizer(rust, vocab, decode)


def _vocabulary(
    rust: RustTokenizer, config: dict[str, Any], model_config: dict[str, Any], generation: dict[str, Any]
) -> Vocabulary:
    """Special, end-of-generation and end-of-turn ids and BOS, by the rules `engines.hf.HFTokenizer` applies."""
    vocab = rust.get_vocab(with_added_tokens=True)
    special = {i for i, t in rust.get_added_tokens_decoder().items() if t.special}
    bos_text, eos_text = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
    bos, eos = vocab.get(bos_text or ""), vocab.get(eos_text or "")
    special |= {i for i in (bos, eos) if i is not None}
    gen_eos = generation.get("eos_token_id")
    eog = {i for i in (gen_eos if isinstance(gen_eos, list) else [gen_eos]) if isinstance(i, int)}
    if eos is not None:
        eog.add(eos)
    eog |= {vocab[m] for m in _EOG_MARKERS if m in vocab and vocab[m] in special}
    eot = next((vocab[m] for m in _EOT_MARKERS if m in vocab), eos)
    probe = rust.encode("a", add_special_tokens=True).ids
    text_config = model_config.get("text_config", model_config)
    return Vocabulary(
        vocab_size=max(rust.get_vocab_size(with_added_tokens=True), int(text_config.get("vocab_size") or 0)),
        special=frozenset(special),
        eog_ids=frozenset(eog),
        eot_id=int(eot if eot is not None else -1),
        bos_id=bos,
        add_bos=bos is not None and bool(probe) and probe[0] == bos,
        chat_template=None,
        bos_text=bos_text or "",
        eos_text=eos_text or "",
    )
