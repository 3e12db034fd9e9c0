"""A fake pipeline for the playground's tests: no models, and every text it returns repeats the prompt.

The echo puts whatever the prompt holds (HTML, script) into every place the page draws a model's text: the draft
column, AlignBeam's column, the route's reason, the anchor's opening, each candidate's text and each token of the
mixed prefix. So one hostile prompt tests every render path, which a real model, which may or may not repeat it,
cannot do deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from alignbeam.api import Result, to_messages
from alignbeam.config import AlignBeamConfig, preset
from alignbeam.method.trace import Candidate, Trace


class EchoAlignBeam:
    """Just enough of AlignBeam's surface for the server; answers are "echo: <the last user message>"."""

    def __init__(self, config: AlignBeamConfig | None = None) -> None:
        self.config = config or preset("recommended")
        tok = SimpleNamespace(encode_chat=lambda msgs: [0] * sum(len(m["content"]) // 4 + 4 for m in msgs))
        self.draft = SimpleNamespace(name="echo-draft", n_ctx=4096, tokenizer=tok)
        self.anchor = SimpleNamespace(name="echo-anchor", n_ctx=4096, tokenizer=tok)
        self.judge = None

    def _answer(self, prompt: Any) -> str:
        return "echo: " + to_messages(prompt)[-1]["content"]

    def _trace(self, text: str, cfg: AlignBeamConfig) -> Trace:
        pieces = [text[:6], text[6:12], text[12:]]
        cands = [
            Candidate(index=0, text=text, score=1.2, n_mixed=3, prefix_pieces=pieces, anchor_shares=[0.9, 0.4, 0.05]),
            Candidate(
                index=1, text="other " + text, score=4.5, n_mixed=1, prefix_pieces=["other "], anchor_shares=[0.2]
            ),
            Candidate(index=2, text=text, score=3.0, source="draft"),
        ]
        return Trace(
            cands,
            0,
            False,
            False,
            {"judge": 1.0, "total": 12.0},
            cfg.to_dict(),
            False,
            request_risk=0.9,
            gated=False,
            route="classifier",
            anchor_opening="opening " + text,
            route_reason="P(harmful) 0.90 is at or above the gate 0.50 because " + text,
        )

    def generate(self, prompt: Any, *, trace: bool = False, **overrides: Any) -> Result:
        cfg = self.config.merged(**overrides)
        text = self._answer(prompt)
        return Result(text, "stop", 5, 3, self._trace(text, cfg) if trace else None)

    def generate_draft(self, prompt: Any, **_: Any) -> Result:
        return Result("draft " + self._answer(prompt), "stop", 5, 3)

    def stream(self, prompt: Any, *, trace: bool = False, **overrides: Any) -> Iterator[str | Result]:
        r = self.generate(prompt, trace=trace, **overrides)
        yield r.text[:10]
        yield r.text[10:]
        yield r

    def check_fits(self, prompt: Any, **overrides: Any) -> None:
        self.config.merged(**overrides)

    def check_sessions(self, **overrides: Any) -> None:
        self.config.merged(**overrides)
