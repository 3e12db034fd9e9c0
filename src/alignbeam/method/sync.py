"""Keeps the anchor reading exactly the draft's response text, in the anchor's own tokens.

After each draft token the response text is re-encoded with the anchor tokenizer; the anchor session is cut
back to the longest common prefix with what it already holds and fed only the rest. A trailing incomplete
UTF-8 character (the draft emitted only some of its bytes) is held back until it is complete, otherwise the
anchor would read a U+FFFD that the draft never meant. With identical tokenizers no re-encoding happens: the
anchor gets the draft's ids, which is what makes alpha = 1 follow the anchor exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from alignbeam.engines.base import Tokenizer

REPLACEMENT = "\ufffd"


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class TextSync:
    def __init__(self, anchor: Tokenizer, draft: Tokenizer, identity: bool) -> None:
        self.anchor = anchor
        self.draft = draft
        self.identity = identity

    def response_text(self, draft_response: Sequence[int]) -> str:
        """The draft's response text with an incomplete trailing character held back."""
        return self.draft.decode(draft_response).rstrip(REPLACEMENT)

    def anchor_response(self, draft_response: Sequence[int]) -> list[int]:
        if self.identity:
            return [int(t) for t in draft_response]
        return self.anchor.encode(self.response_text(draft_response))

    def plan(self, held: Sequence[int], draft_response: Sequence[int]) -> tuple[int, list[int]]:
        """(tokens of `held` to keep, tokens to feed after them) so the anchor holds the draft's text."""
        target = self.anchor_response(draft_response)
        keep = common_prefix(held, target)
        return keep, target[keep:]
