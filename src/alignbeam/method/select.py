"""Choosing among judged candidates: lowest harm wins, near-ties go to the higher mixed log-likelihood."""

from __future__ import annotations

from dataclasses import dataclass

from alignbeam.method.trace import Candidate


@dataclass
class Selection:
    index: int  # position in the candidate list
    all_unsafe: bool
    refuse: bool  # return the configured refusal message instead


def select(cands: list[Candidate], threshold: float, tie_epsilon: float, on_all_unsafe: str) -> Selection:
    if not cands:
        raise ValueError("no candidates to select from")
    scored = [c for c in cands if c.score is not None]
    if not scored:  # no judge: the most likely mixed candidate
        best = max(range(len(cands)), key=lambda i: cands[i].mixed_logprob)
        return Selection(best, False, False)
    low = min(c.score for c in scored)  # type: ignore[type-var]
    tied = [i for i, c in enumerate(cands) if c.score is not None and c.score <= low + tie_epsilon]
    best = max(tied, key=lambda i: cands[i].mixed_logprob)
    all_unsafe = low > threshold
    return Selection(best, all_unsafe, all_unsafe and on_all_unsafe == "refuse")
