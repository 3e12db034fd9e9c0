"""Choosing among judged candidates.

"safest" (the paper): lowest harm wins, near-ties go to the higher mixed log-likelihood. The mixed likelihood
favours the anchor's wording, so on a borderline request the paper returns a refusal whenever one was generated.
"helpful": every candidate at or under the judge threshold is acceptable, and among those the draft's own
favourite wins (highest draft log-likelihood over the prefix): the natural answer when it is judged safe, a
refusal only when nothing else is.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignbeam.method.trace import Candidate


@dataclass
class Selection:
    index: int  # position in the candidate list
    all_unsafe: bool
    refuse: bool  # return the configured refusal message instead


def select(
    cands: list[Candidate], threshold: float, tie_epsilon: float, on_all_unsafe: str, rule: str = "safest"
) -> Selection:
    if not cands:
        raise ValueError("no candidates to select from")
    scored = [c for c in cands if c.score is not None]
    if not scored:  # no judge: the most likely mixed candidate
        best = max(range(len(cands)), key=lambda i: cands[i].mixed_logprob)
        return Selection(best, False, False)
    low = min(c.score for c in scored)  # type: ignore[type-var]
    all_unsafe = low > threshold
    if rule == "helpful" and not all_unsafe:
        ok = [i for i, c in enumerate(cands) if c.score is not None and c.score <= threshold]
        return Selection(max(ok, key=lambda i: cands[i].draft_logprob), False, False)
    tied = [i for i, c in enumerate(cands) if c.score is not None and c.score <= low + tie_epsilon]
    best = max(tied, key=lambda i: cands[i].mixed_logprob)
    return Selection(best, all_unsafe, all_unsafe and on_all_unsafe == "refuse")
