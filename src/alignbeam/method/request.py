"""One request's state as it travels the pipeline, and what the pipeline hands back.

As nano-vllm's `Sequence`, a `Request` is passed from step to step instead of a growing list of parameters: the
gate (route.py) writes what it read and decided, encoding (pipeline.py) adds the prompts in each model's tokens,
and choosing (choose.py) reads the route's risk. Whatever one step encoded or read is kept here, so no later step
computes it again (the anchor's prompt, read by the anchor check, is the anchor route's prompt too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Message, Snapshot
from alignbeam.engines.chat import validate_messages
from alignbeam.errors import AlignBeamError
from alignbeam.method.trace import Timer, Trace

Prompt = str | Sequence[Message]


def to_messages(prompt: Prompt, system: str | None = None) -> list[Message]:
    """A prompt (text or chat messages) and an optional system message as one validated conversation."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise AlignBeamError("the prompt is empty: pass some text or a list of chat messages")
        msgs = [{"role": "user", "content": prompt}]
    else:
        msgs = [dict(m) for m in prompt]
    if system is not None:
        msgs = [{"role": "system", "content": system}, *[m for m in msgs if m.get("role") != "system"]]
    return validate_messages(msgs)


@dataclass
class Request:
    """Everything one generation knows about its request, filled in as it goes.

    `cfg` starts as the caller's merged config; the route narrows it (the draft alone: alpha 0, K 1, no judge).
    The route's fields are what the trace reports: `route` is its name ("draft", "classifier", "anchor",
    "prefill", "uncalibrated", or None without a gate), `risk` the classifier's P(harmful request).
    """

    messages: list[Message]
    cfg: AlignBeamConfig
    stream: bool = False
    timer: Timer = field(default_factory=Timer)
    started: float = field(default_factory=time.perf_counter)
    # -- what the gate read and decided (route.py) --
    route: str | None = None
    risk: float | None = None
    #: the anchor's own greedy opening and whether it declines (1.0) or not (0.0), when the check read one
    anchor_opening: str | None = None
    anchor_refusal: float | None = None
    #: the anchor's state after the prompt, when the anchor route mixes from the prompt the check already read
    anchor_state: Snapshot | None = None
    #: the risk the judge scores a flagged request at, where it is not the judge's own read (None: its own)
    judged_risk: float | None = None
    #: why the route was taken, in words (route.reason_for)
    reason: str = "no gate: every request gets the full method"
    # -- the prompt in each model's tokens, each encoded once (pipeline.py) --
    draft_ids: list[int] = field(default_factory=list)
    anchor_ids: list[int] | None = None

    @property
    def must_decline(self) -> bool:
        """The anchor route exists to let the anchor's refusal stand: its one candidate must decline too."""
        return self.route == "anchor"

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)


@dataclass
class Result:
    """What a generation returns: the text, why it ended, token counts, and the trace when one was asked for."""

    text: str
    finish_reason: str  # "stop" (end of turn / stop string), "length" (max_new_tokens) or "refused"
    prompt_tokens: int
    completion_tokens: int
    trace: Trace | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
        }
        if self.trace is not None:
            d["trace"] = self.trace.to_dict()
        return d
