"""Reading an answer out of a model's next-token logits: the shared machinery of every judge-like component.

The judges (judge.py, guard.py) and the refusal grader (eval/grader.py) never sample text. Each asks the model a
question in its own chat template, ends the prompt where the answer word would start ("Answer:"), and reads the
probability of the answer words from the next-token distribution, so a verdict is deterministic and costs one
forward pass. Many candidates to one request share everything before the quoted candidate: the prompt is written
once with MARKER where the candidate goes, the part before it is read once, and each candidate is a fork of that
session fed only its own suffix, all of them in one batched step.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from alignbeam.engines.base import Model, Snapshot, softmax
from alignbeam.errors import AlignBeamError

#: where the text to judge goes in a prompt template: a string no request or candidate can contain (callers strip
#: it from untrusted text), so splitting on it always finds the one slot
MARKER = "\u0000SLOT\u0000"


def render(model: Model, system: str, user: str, answer_start: str) -> str:
    """A one-question prompt in the model's own chat template, followed by the start of its answer.

    Instruct models answer best in the template they were tuned on, and ending the text with `answer_start`
    ("Answer:", "Rating:") makes the very next token the answer word, which is what the caller reads."""
    tok = model.tokenizer
    try:
        text = tok.render_chat([{"role": "system", "content": system}, {"role": "user", "content": user}])
    except AlignBeamError:  # templates without a system role (Gemma): fold it into the user turn
        text = tok.render_chat([{"role": "user", "content": system + "\n\n" + user}])
    return text + answer_start


def option_ids(model: Model, words: Sequence[str]) -> list[int]:
    """Token ids that start an answer word: the first token of each spelling, with and without a leading space
    (after "Answer:" a tokenizer may or may not fold the space into the word), deduplicated and sorted."""
    tok = model.tokenizer
    ids = {tok.encode(v)[0] for w in words for v in (w, " " + w) if tok.encode(v)}
    return sorted(ids)


def ids_with_bos(model: Model, text: str, untrusted: Sequence[str] = ()) -> list[int]:
    """Ids of a rendered prompt (chat markup parsed as special tokens, except inside the `untrusted` parts: the
    request or response it quotes), with BOS first when the model wants one: `Tokenizer.encode` never adds it,
    and a session opened on these ids is the start of the model's input."""
    tok = model.tokenizer
    ids = tok.encode_trusted(text, untrusted)
    return [tok.bos_id, *ids] if tok.add_bos and tok.bos_id is not None else ids


def iter_slot_logits(
    model: Model,
    template: str,
    fills: Sequence[str],
    max_fill_tokens: int,
    batch: int | None = None,
    untrusted: Sequence[str] = (),
) -> Iterator[list[np.ndarray]]:
    """Next-token logits after `template` with MARKER replaced by each fill, `batch` fills per batched step (all
    at once when None). The head before MARKER is read once for all of them; a caller can store each batch's
    results before the next is computed (benchmarks over hundreds of fills stay resumable). Each fill is cut to
    `max_fill_tokens` tokens, and an empty one reads as "(empty)"."""
    if not fills:
        return
    tok = model.tokenizer
    head, tail = template.split(MARKER)
    tail_ids = tok.encode(tail, parse_special=True)
    size = batch or max(1, len(fills))
    with model.session(ids_with_bos(model, head, untrusted)) as base:
        for i in range(0, len(fills), size):
            suffixes = [
                (tok.encode(f)[:max_fill_tokens] or tok.encode("(empty)")) + tail_ids for f in fills[i : i + size]
            ]
            forks = [base.fork() for _ in suffixes]
            try:
                model.step(forks, suffixes)
                yield [f.logits() for f in forks]
            finally:
                for f in forks:
                    f.close()


def slot_logits(
    model: Model, template: str, fills: Sequence[str], max_fill_tokens: int, untrusted: Sequence[str] = ()
) -> list[np.ndarray]:
    """`iter_slot_logits` in one batch: the K candidates of one request."""
    chunks = iter_slot_logits(model, template, fills, max_fill_tokens, untrusted=untrusted)
    return [lg for chunk in chunks for lg in chunk]


def log_odds(logits: np.ndarray, yes: Sequence[int], no: Sequence[int]) -> float:
    """log P(any `yes` token) - log P(any `no` token): a yes/no verdict as a margin. Only the two answers are
    compared, so the mass the model puts on other tokens does not dilute it; the sums run in log space."""
    lp = np.log(softmax(logits) + 1e-300)
    return float(np.logaddexp.reduce(lp[list(yes)]) - np.logaddexp.reduce(lp[list(no)]))


def sigmoid(x: float) -> float:
    """A margin (`log_odds`, a probe's score) back to a probability."""
    return 1.0 / (1.0 + math.exp(-x))


class HeadCache:
    """The fixed head of a prompt that is read again and again (the request classifier's instructions, ahead of
    every request), prefilled once and kept as an engine snapshot (Model.snapshot: llama.cpp copies the KV cells
    out, so no sequence slot stays held), so each reading restores it and prefills only what follows. Under prompt
    gating the classifier reads every request, and its head (system message and instructions, about 90 tokens)
    was most of that prefill.

    `logits(ids)` equals a fresh session's `logits()` on `ids` up to float rounding; ids that do not start with
    the head (another template, a tokenizer that merged across the boundary) get a fresh session.
    """

    def __init__(self, model: Model, head: Sequence[int]) -> None:
        self.model = model
        self.head = list(head)
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        n = len(self.head)
        if len(ids) <= n or list(ids[:n]) != self.head:
            with self.model.session(ids) as s:
                return s.logits()
        with self._lock:  # requests may run at once (remote engines); the snapshot is taken once
            if self._snap is None:
                with self.model.session(self.head) as h:
                    self._snap = self.model.snapshot(h)
        with self.model.restore(self._snap) as s:
            s.extend(ids[n:])
            return s.logits()
