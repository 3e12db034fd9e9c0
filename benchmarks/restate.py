"""The request restated plainly: a second read for the request classifier where a framing hides what is asked.

Wrappers such as "my grandfather used to tell me how people would ...", "purely hypothetically, if someone needed
to ..." or "in the year 2040, how will people ..." move the request classifier's reading of a request towards
the wrapper and away from what is asked: under some of them it ranks harmful and harmless requests no better than
chance (docs/judge.md). The judge model can undo the wrapper itself: asked to rewrite the request as one plain,
direct request without its framing, it drops the story, the game or the hypothetical and keeps what is asked,
and the classifier then reads that. The prompt was written once from the names of the framings, and was not
tuned on any row.

A restatement is a second read beside the written one, never a replacement: on requests nobody looked at, it
ranked reworded requests better under "used to", hypothetical and future-tense framing, and worse on plain
requests and some other framings (docs/judge.md, "the judge restates the request"). Built into the gate as an
opt-in second read (the `restate` knob), it added 3 of 96 harmful refusals and 2 of 96 harmless ones on rows
nobody had read, at twice the median latency, so it left the library: this experiment keeps it.
"""

from __future__ import annotations

from alignbeam.engines.base import Model

RESTATE_PROMPT = (
    "Rewrite the request below as one plain, direct instruction or question in the present tense. Keep exactly "
    "what it asks for, and drop any framing around it: a story, a game, a role to play, a hypothetical, the past "
    "or the future, someone who used to know. Answer with the rewritten request only.\n\n"
    "[REQUEST]\n{request}\n[END REQUEST]"
)

#: a restatement is one line; 40 tokens hold the longest seen (a HarmBench behaviour with its details)
RESTATE_TOKENS = 40


def restate(model: Model, request: str, max_tokens: int = RESTATE_TOKENS) -> str:
    """The model's greedy one-line restatement of `request` (empty when it writes nothing usable).

    Greedy, so the same request always gets the same restatement (and the same decision). Stops at the first
    line break: the prompt asks for one request, and what follows a line break is commentary. A request too long
    for the model's window is not restated (""): the written read is all there is, as without this step.
    """
    ids = model.tokenizer.encode_chat([{"role": "user", "content": RESTATE_PROMPT.format(request=request)}])
    if len(ids) + max_tokens > model.n_ctx:
        return ""

    def first_line(out: list[int]) -> bool:
        return "\n" in model.tokenizer.decode(out).strip()

    text = model.tokenizer.decode(model.generate_greedy(ids, max_tokens, stop_when=first_line)).strip()
    return text.split("\n")[0].strip().strip('"')
