"""The tokenizer view an engine gives the method: encode / decode, single-token texts and the chat template.

Its own module (`base` re-exports it) because it holds the one piece of shared logic that every engine's
tokenizer inherits: encoding a rendered chat prompt so that text a user or a model wrote can never be read as
special-token markup (`encode_chat`, `encode_trusted`).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

Message = dict[str, str]


class Tokenizer(ABC):
    """A model's tokenizer as the method sees it; ids index the model's logits vector."""

    #: length of the logits vector (may exceed the number of real tokens: padded embedding rows)
    vocab_size: int
    #: tokens that end a response (eos, end-of-turn)
    eog_ids: frozenset[int]
    #: the token that ends an assistant turn in this model's chat template
    eot_id: int
    bos_id: int | None
    add_bos: bool

    @abstractmethod
    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        """Text -> ids, never adding BOS/EOS; special-token markup is parsed only when asked."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Many texts at once (no special-token parsing); engines with a batch tokenizer override this."""
        return [self.encode(t) for t in texts]

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text without special tokens; an incomplete trailing UTF-8 character becomes U+FFFD."""

    @abstractmethod
    def token_texts(self) -> list[str]:
        """Context-free text of every id ("" for special/control tokens); the bridge caches a table of these."""

    @abstractmethod
    def special_ids(self) -> frozenset[int]:
        """Ids that never appear as text (control tokens, BOS/EOS, chat markup)."""

    @abstractmethod
    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The conversation in this model's own chat template, as text (special markup included)."""

    def encode_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
        """The prompt ids for a conversation, BOS included when the model wants one. The template's markup is
        parsed as special tokens, the messages' own text never is (`encode_trusted`)."""
        text = self.render_chat(messages, add_generation_prompt)
        contents = [m["content"] for m in messages]
        if any(c not in text and self.has_markup(c) for c in contents):
            # the template rewrote a message that holds markup: defuse that markup before rendering instead
            messages = [
                {**m, "content": _defuse(m["content"])} if self.has_markup(m["content"]) else m for m in messages
            ]
            text = self.render_chat(messages, add_generation_prompt)
            contents = [m["content"] for m in messages]
        ids = self.encode_trusted(text, contents)
        if self.add_bos and self.bos_id is not None and (not ids or ids[0] != self.bos_id):
            ids = [self.bos_id, *ids]
        return ids

    def encode_trusted(self, text: str, untrusted: Sequence[str] = ()) -> list[int]:
        """Ids of `text`, a rendered prompt whose markup is parsed as special tokens, except inside the
        `untrusted` substrings (what a user or a model wrote): there, "<|im_end|>" typed as text stays text, so a
        message cannot close its own turn or open a new one for any model.

        Text without special-token markup encodes exactly as before (one call); only a prompt whose untrusted
        parts contain markup is split around them, each part encoded on its own.
        """
        risky = sorted({u for u in untrusted if u and self.has_markup(u)}, key=len)
        if not risky:
            return self.encode(text, parse_special=True)
        ids: list[int] = []
        pos = 0
        pattern = re.compile("|".join(re.escape(u) for u in reversed(risky)))  # longest first
        for m in pattern.finditer(text):
            ids += self.encode(text[pos : m.start()], parse_special=True) + self.encode(m.group())
            pos = m.end()
        return ids + self.encode(text[pos:], parse_special=True)

    def has_markup(self, text: str) -> bool:
        """Whether `text` holds special-token markup (it encodes differently with markup parsed)."""
        return bool(text) and self.encode(text, parse_special=True) != self.encode(text)

    def fingerprint(self) -> str:
        """Identifies the vocabulary (for caches keyed on tokenizer pairs); cheap after the first call."""
        fp = getattr(self, "_fingerprint", None)
        if fp is None:
            h = hashlib.sha256()
            for t in self.token_texts():
                h.update(t.encode("utf-8", "surrogatepass"))
                h.update(b"\0")
            h.update(str(sorted(self.special_ids())).encode())
            fp = h.hexdigest()[:16]
            self._fingerprint = fp
        return fp


def _defuse(text: str) -> str:
    """Markup made plain text for any template: a zero-width space after each "<" ("<|im_end|>", "<eos>",
    "<start_of_turn>"), used only where a chat template rewrote a message so it cannot be encoded apart."""
    return text.replace("<", "<\u200b")
