"""A fake engine for unit tests: scripted logits behind the real `engines/base.py` interface, and a scripted judge.

The method never knows which engine runs underneath, so every route of the gate, the candidate search, judging
and selection can be tested in milliseconds on models whose answers a test writes down:

- `CharTokenizer`: one token per character, an end-of-turn token, a chat template of plain text. Two tokenizers
  with the characters in different orders make a cross-vocabulary pair (the bridge maps every token exactly).
- `ScriptedModel`: answers each request with the replies a test gives it. At each position every reply the
  response so far is a prefix of proposes its next character (end-of-turn at its end); the first reply gets the
  highest logit, the next ones less. A response that left every reply ends there. Sessions are real
  `Session`s (extend, fork, truncate, close), so batching, forking and session leaks are what the engines see.
- `ScriptedJudge`: a `Judge` whose request classifier returns the risk a test wrote for the request, and whose
  candidate score is 1 + 4 x risk x P(complies), P(complies) being 0.1 for a plain refusal (as the default judge).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from alignbeam.engines.base import Message, Model, ModelInfo, Session, Tokenizer
from alignbeam.method.judge import Judge
from alignbeam.method.textrules import is_refusal

CHARS = string.printable[:95] + "\n\u2019"
#: what a reply proposes, for the first, second, ... reply that fits the response so far
REPLY_LOGITS = (10.0, 7.0, 5.0, 4.0, 3.0)


class CharTokenizer(Tokenizer):
    """One token per character; `reverse` lays the characters out in the opposite order (another vocabulary)."""

    def __init__(self, reverse: bool = False) -> None:
        chars = CHARS[::-1] if reverse else CHARS
        self.texts = ["", *chars]  # id 0: end of turn
        self.ids = {c: i for i, c in enumerate(self.texts) if c}
        self.vocab_size = len(self.texts)
        self.eog_ids = frozenset({0})
        self.eot_id = 0
        self.bos_id = None
        self.add_bos = False
        self.chat_calls = 0  # how many conversations were encoded (a prompt is encoded once per model)

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        return [self.ids[c] for c in text if c in self.ids]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.texts[i] for i in ids)

    def token_texts(self) -> list[str]:
        return list(self.texts)

    def special_ids(self) -> frozenset[int]:
        return frozenset({0})

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        text = "".join(f"[{m['role']}]{m['content']}\n" for m in messages)
        return text + "[assistant]" if add_generation_prompt else text

    def encode_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
        self.chat_calls += 1
        return super().encode_chat(messages, add_generation_prompt)


class ScriptedSession(Session):
    def __init__(self, model: ScriptedModel, tokens: Sequence[int]) -> None:
        self.model = model
        self.tokens = list(tokens)
        self.closed = False
        model.open_sessions += 1

    def logits(self) -> np.ndarray:
        assert not self.closed, "logits() of a closed session"
        return self.model.next_logits(self.tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        assert not self.closed, "extend() of a closed session"
        self.tokens += list(tokens)

    def fork(self) -> ScriptedSession:
        return ScriptedSession(self.model, self.tokens)

    def truncate(self, n: int) -> None:
        del self.tokens[n:]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.model.open_sessions -= 1


class ScriptedModel(Model):
    """A model whose answers are written down: `replies[key]` for a request containing `key` (first match),
    else `default`; each is a list of replies, most likely first."""

    def __init__(
        self,
        name: str,
        replies: dict[str, list[str]],
        default: Sequence[str] = ("OK.",),
        tokenizer: CharTokenizer | None = None,
    ) -> None:
        self.tokenizer = tokenizer or CharTokenizer()
        self.info = ModelInfo(name=name, engine="scripted", path="", n_ctx=4096)
        self.replies = replies
        self.default = list(default)
        self.open_sessions = 0

    def session(self, tokens: Sequence[int] = ()) -> ScriptedSession:
        return ScriptedSession(self, tokens)

    def answers(self, request: str) -> list[str]:
        return next((v for k, v in self.replies.items() if k in request), self.default)

    def next_logits(self, tokens: Sequence[int]) -> np.ndarray:
        text = self.tokenizer.decode(tokens)
        head, _, response = text.rpartition("[assistant]")
        request = head.rpartition("[user]")[2]
        out = np.zeros(self.tokenizer.vocab_size, dtype=np.float32)
        fitting = [r for r in self.answers(request) if r.startswith(response)]
        if not fitting:
            out[self.tokenizer.eot_id] = REPLY_LOGITS[0]  # off script: the answer ends here
        for reply, logit in zip(fitting, REPLY_LOGITS):
            nxt = self.tokenizer.eot_id if reply == response else self.tokenizer.ids[reply[len(response)]]
            out[nxt] = max(out[nxt], logit)
        return out


class ScriptedJudge(Judge):
    """A judge with written request risks (`risks[key]` for a request containing `key`, else `default`)."""

    refusal_p_complies = 0.1

    def __init__(self, risks: dict[str, float | None], default: float | None = 0.0) -> None:
        self.risks = risks
        self.default = default
        self.gate = 0.5
        self.read_gate = 0.05
        self.request_reads = 0
        self.scored_at: list[float | None] = []  # the request risk each score_at_risk call judged at

    def _find(self, table: dict, messages: Sequence[Message], default: float | None) -> float | None:
        request = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        return next((v for k, v in table.items() if k in request), default)

    def request_risk(self, messages: Sequence[Message]) -> float | None:
        self.request_reads += 1
        return self._find(self.risks, messages, self.default)

    def score(self, messages: Sequence[Message], responses: Sequence[str]) -> list[float]:
        return self.score_at_risk(messages, responses, None)

    def p_complies(self, messages: Sequence[Message], responses: Sequence[str]) -> list[float]:
        return [self.refusal_p_complies if is_refusal(r) else 1.0 for r in responses]

    def combine(self, p_harmful: float, p_complies: Sequence[float]) -> list[float]:
        """As SafetyJudge.combine: under read_gate nothing is read and every candidate scores alike."""
        if p_harmful < self.read_gate:
            return [1.0 + 4.0 * p_harmful for _ in p_complies]
        return [1.0 + 4.0 * p_harmful * pc for pc in p_complies]

    def score_at_risk(
        self, messages: Sequence[Message], responses: Sequence[str], request_risk: float | None
    ) -> list[float]:
        self.scored_at.append(request_risk)
        risk = self._find(self.risks, messages, self.default) or 0.0
        risk = risk if request_risk is None else max(risk, request_risk)
        pcs = self.p_complies(messages, responses) if risk >= self.read_gate else [1.0] * len(responses)
        return self.combine(risk, pcs)

    @property
    def refusal_bound(self) -> float | None:
        return 1 + 4 * self.refusal_p_complies


REFUSAL = "I cannot help with that."
HARMFUL = "Sure, here is how: mix the powder."
#: what the refusal grader's question (eval/grader.py) asks; the scripted anchor, which grades, answers "A" (it
#: complies) right after the "Answer:" the grader's prompt ends with
GRADER_QUESTION = "Which describes the RESPONSE best?"


def scripted_pair(cross: bool = True) -> tuple[ScriptedModel, ScriptedModel, ScriptedJudge]:
    """A draft that answers everything (its second choice: a refusal), an anchor that declines what is harmful
    and answers what is not, and a judge with written request risks."""
    draft = ScriptedModel(
        "draft",
        {
            "bomb": [HARMFUL, REFUSAL],
            "lock": ["Pick it with a tension wrench.", REFUSAL],
            "cake": ["Bake it at 180C for 30 minutes."],
            "story": ["A dragon story: once, a dragon slept.", REFUSAL],
            "unsure": ["Ask it: whether to ask is up to you.", REFUSAL],
        },
        default=["Here is an answer.", REFUSAL],
    )
    anchor = ScriptedModel(
        "anchor",
        {
            GRADER_QUESTION: ["Answer:A"],
            "bomb": [REFUSAL],
            "lock": [REFUSAL],
            "cake": ["Bake at 180C."],
            "story": ["Once upon a time."],
        },
        default=["Here is what I know."],
        tokenizer=CharTokenizer(reverse=cross),
    )
    judge = ScriptedJudge({"bomb": 0.9, "lock": 0.2, "cake": 0.01, "story": 0.2, "unsure": 0.3, "nothing": None})
    return draft, anchor, judge
