"""A tokenizer over the `tokenizers` package: the gateway install's tokenizer for remote models.

The remote engine renders and tokenizes prompts locally, so it needs a model's vocabulary and chat template but
never its weights. The full install reads them with llama.cpp (GGUF) or transformers (Hugging Face folders); the
gateway install (`pip install alignbeam`) has neither, and `tokenizers` (Rust, no torch) does the encoding instead.
Built from a GGUF file (`gguf_tokenizer`) or from a Hugging Face folder's tokenizer files (`hf_files`).

Two `tokenizers.Tokenizer` objects are kept, one that parses special-token markup and one that reads it as text,
instead of flipping `encode_special_tokens` on one: the remote engine tokenizes from several threads at once. The
two share one BPE model (its vocabulary and merges are most of a tokenizer's memory: a copy cost the gateway about
108 MB for the embedded SmolLM2 and Qwen2.5 tokenizers); only the small added-token table is held twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer as RustTokenizer

from alignbeam.engines import chat
from alignbeam.engines.base import Message, Tokenizer


@dataclass(frozen=True)
class Vocabulary:
    """What a vocabulary says beyond its encoder: the ids that end a response or are never text, BOS, the
    end-of-turn token, the chat template and the BOS/EOS texts the template may use."""

    vocab_size: int
    special: frozenset[int]
    eog_ids: frozenset[int]
    eot_id: int
    bos_id: int | None
    add_bos: bool
    chat_template: str | None
    bos_text: str = ""
    eos_text: str = ""


class FastTokenizer(Tokenizer):
    """`Tokenizer` over a `tokenizers.Tokenizer`; `decoder` turns non-special ids into text (GGUF: the raw bytes of
    each piece, as llama.cpp does; Hugging Face: the tokenizer's own decoder, as transformers does)."""

    def __init__(self, parsing: RustTokenizer, vocab: Vocabulary, decoder: Callable[[Sequence[int]], str]) -> None:
        self._parsing = parsing
        self._plain = plain_twin(parsing)
        self._decoder = decoder
        self.vocab_size = vocab.vocab_size
        self._special = vocab.special | vocab.eog_ids
        self.eog_ids = vocab.eog_ids
        self.eot_id = vocab.eot_id
        self.bos_id = vocab.bos_id
        self.add_bos = vocab.add_bos
        self.chat_template = vocab.chat_template
        self._bos_text, self._eos_text = vocab.bos_text, vocab.eos_text
        self._texts: list[str] | None = None

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        tok = self._parsing if parse_special else self._plain
        return tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [e.ids for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._decoder([int(i) for i in ids if int(i) not in self._special])

    def token_texts(self) -> list[str]:
        if self._texts is None:
            self._texts = ["" if i in self._special else self._decoder([i]) for i in range(self.vocab_size)]
        return self._texts

    def special_ids(self) -> frozenset[int]:
        return self._special

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        return chat.render_for(self, messages, add_generation_prompt, self._bos_text, self._eos_text)


def plain_twin(parsing: RustTokenizer) -> RustTokenizer:
    """A tokenizer that encodes as `parsing` does except that special-token markup stays text, over the same BPE
    model object (shared, not copied). Its added tokens are added again in id order; where that would not give
    them the same ids (added tokens outside the model's vocabulary, with gaps), a full copy is made instead."""
    twin = RustTokenizer(parsing.model)
    for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        if getattr(parsing, part) is not None:
            setattr(twin, part, getattr(parsing, part))
    if parsing.truncation:
        twin.enable_truncation(**parsing.truncation)
    if parsing.padding:
        twin.enable_padding(**parsing.padding)
    added = parsing.get_added_tokens_decoder()
    twin.add_tokens([added[i] for i in sorted(added)])
    if twin.get_added_tokens_decoder() != added:
        twin = RustTokenizer.from_str(parsing.to_str())
    twin.encode_special_tokens = True  # markup typed as text stays text
    return twin
