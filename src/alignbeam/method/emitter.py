"""Streaming: a growing token list turned into text deltas that never need to be taken back."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from alignbeam.method.textrules import declines_first, trim_stop


class Emitter:
    """Turns a growing token list into text deltas that never need to be taken back.

    A trailing incomplete UTF-8 character is held back, and so is any tail that could still grow into a stop
    string; at the end the final (stop-trimmed) text settles what is left. With `hold_relapse` (config
    relapse_cut) nothing is sent before the first sentence is complete, and a response whose first sentence
    declines is sent only once complete: it may still be cut back to its refusal.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str], stop: Sequence[str], hold_relapse: bool = False) -> None:
        self._decode = decode
        self._stop = tuple(stop)
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._hold_relapse = hold_relapse
        self.sent = ""

    def feed(self, tokens: Sequence[int], final_text: str | None = None) -> Iterator[str]:
        if final_text is not None:
            text = final_text
        else:
            text = trim_stop(self._decode(tokens).rstrip("\ufffd"), self._stop)[0]
            if self._hold:
                text = text[: max(len(self.sent), len(text) - self._hold)]
            if self._hold_relapse and declines_first(text) is not False:
                text = self.sent
        if text.startswith(self.sent) and len(text) > len(self.sent):
            delta, self.sent = text[len(self.sent) :], text
            yield delta
