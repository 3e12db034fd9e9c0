"""How a safety-aligned model opens its own answer: the anchor's refusal as a signal that nothing was fitted for.

Prompt gating's `anchor_check` asks the anchor to answer a request the classifier was unsure of, and looks at the
first words. Greedy decoding shows only the single most likely opening, and a model that is 45% likely to open
with "I'm sorry, but I can't" and 55% likely to open with "In 2040, people will" shows no refusal at all. So the
opening is explored as a small tree: from each partial opening, the most likely next tokens, keeping the `leaves`
most likely openings overall (and none under `floor`), until each is settled by `textrules.opening_settled` (it
declines, or its first words can no longer start a refusal). The share of the explored probability that declines
estimates how likely the anchor is to refuse. `leaves=1` is exactly greedy decoding, and is what the gate reads:
exploring more refused fewer harmful rewordings and more harmless ones end to end (docs/method.md, "Retired
knobs"), so wider trees are left to benchmarks/anchor_opening.py.

All paths of the tree advance in one batched forward pass per token (`Model.step`), so a tree of four costs
little more than greedy decoding on engines that batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alignbeam.engines.base import Model, Session, Snapshot
from alignbeam.method.textrules import opening_declines, opening_settled


@dataclass(frozen=True)
class Opening:
    """What the anchor's explored openings say."""

    #: greedy decoding's opening (the most likely explored one, if the tree pruned the greedy path)
    text: str
    #: probability of the explored openings that decline
    p_decline: float
    #: probability of all explored openings (the rest was pruned)
    p_explored: float
    #: the model's state after the prompt (with keep_prompt), so a caller that goes on from the same prompt (the
    #: anchor route's mix) does not prefill it again
    prompt_state: Snapshot | None = None

    @property
    def decline_share(self) -> float:
        """The share of the explored probability that declines: 0 or 1 for greedy decoding."""
        return self.p_decline / self.p_explored if self.p_explored > 0 else 0.0


@dataclass
class _Path:
    logp: float
    tokens: list[int]
    session: Session | None
    greedy: bool = True  # every token so far was its parent's most likely


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = float(np.max(x))
    return x - m - float(np.log(np.sum(np.exp(x - m))))


#: an opening that is decided: (log-probability, tokens, declines, on the greedy path)
Settled = tuple[float, list[int], bool, bool]


def explore_opening(
    model: Model,
    prompt: Sequence[int],
    max_tokens: int,
    leaves: int = 1,
    floor: float = 0.0,
    keep_prompt: bool = False,
) -> Opening:
    """Explore the model's likely openings after `prompt` for up to `max_tokens` tokens (see the module doc)."""
    tok = model.tokenizer
    free = model.free_sessions
    leaves = max(1, min(leaves, free if free is not None else leaves))
    root = model.session(prompt)
    try:
        state = model.snapshot(root) if keep_prompt else None
    except BaseException:
        root.close()
        raise
    frontier = [_Path(0.0, [], root)]
    settled: list[Settled] = []
    try:
        for _ in range(max_tokens):
            if not frontier:
                break
            frontier = _grow(model, frontier, leaves, floor, settled)
        # openings still undecided after max_tokens count as explored and not declining
        settled += [(p.logp, p.tokens, opening_declines(tok.decode(p.tokens)), p.greedy) for p in frontier]
    finally:
        for p in frontier:
            if p.session is not None:
                p.session.close()
    shown = next((s for s in settled if s[3]), None) or max(settled, key=lambda s: s[0])
    return Opening(
        text=tok.decode(shown[1]),
        p_decline=float(sum(np.exp(lp) for lp, _, d, _ in settled if d)),
        p_explored=float(sum(np.exp(lp) for lp, _, _, _ in settled)),
        prompt_state=state,
    )


def _grow(model: Model, frontier: list[_Path], leaves: int, floor: float, settled: list[Settled]) -> list[_Path]:
    """One token deeper: the `leaves` most likely children of the frontier (none under `floor` but the most
    likely), stepped in one batch; the ones now decided go to `settled`, the rest are the new frontier."""
    tok = model.tokenizer
    kids: list[tuple[float, int, int]] = []
    best_next: list[int] = []
    for i, path in enumerate(frontier):
        assert path.session is not None
        lp = _log_softmax(path.session.logits())
        top = np.argpartition(-lp, leaves - 1)[:leaves] if leaves < len(lp) else np.arange(len(lp))
        kids += [(path.logp + float(lp[t]), i, int(t)) for t in top]
        best_next.append(int(np.argmax(lp)))
    kids.sort(reverse=True)
    # the most likely opening is always kept (so leaves=1 is greedy); the others must clear the floor
    kids = kids[:1] + [k for k in kids[1:leaves] if np.exp(k[0]) >= floor]
    grown: list[_Path] = []
    remaining = {i: sum(1 for _, j, t in kids if j == i and t not in tok.eog_ids) for i in range(len(frontier))}
    for logp, i, t in kids:
        parent = frontier[i]
        greedy = parent.greedy and t == best_next[i]
        if t in tok.eog_ids:  # the answer ends here: its opening is what was said
            settled.append((logp, parent.tokens, opening_declines(tok.decode(parent.tokens)), greedy))
            continue
        remaining[i] -= 1
        # the last child takes the parent's session; the others fork it (the KV is copied, not recomputed)
        assert parent.session is not None
        s = parent.session if remaining[i] == 0 else parent.session.fork()
        grown.append(_Path(logp, [*parent.tokens, t], s, greedy))
    for i, path in enumerate(frontier):
        if remaining[i] == 0 and all(g.session is not path.session for g in grown) and path.session:
            path.session.close()
        path.session = None
    if grown:
        model.step([g.session for g in grown], [[g.tokens[-1]] for g in grown])  # type: ignore[misc]
    frontier = []
    for g in grown:
        text = tok.decode(g.tokens)
        if opening_settled(text):
            settled.append((g.logp, g.tokens, opening_declines(text), g.greedy))
            assert g.session is not None
            g.session.close()
        else:
            frontier.append(g)
    return frontier
