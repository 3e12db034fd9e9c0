"""The read-out helpers judges share: prompts in the model's template, answer-word ids, slot logits, margins."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from alignbeam.errors import AlignBeamError
from alignbeam.method import readout as R


class CharTokenizer:
    """One id per character (id = code point), with "<s>" as BOS; " X" pieces are whole tokens, as in BPE."""

    vocab_size = 512
    bos_id = 1

    def __init__(self, add_bos: bool = True, system_role: bool = True) -> None:
        self.add_bos = add_bos
        self.system_role = system_role

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            if text[i] == " " and i + 1 < len(text):  # a leading space folds into the next character
                ids.append(256 + ord(text[i + 1]) % 256)
                i += 2
            else:
                ids.append(ord(text[i]) % 256)
                i += 1
        return ids

    def encode_trusted(self, text: str, untrusted: Sequence[str] = ()) -> list[int]:
        return self.encode(text, parse_special=True)  # no markup in this tokenizer

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if not self.system_role and any(m["role"] == "system" for m in messages):
            raise AlignBeamError("this template has no system role")
        return "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"


class RecordingSession:
    def __init__(self, log: list[list[int]], tokens: Sequence[int]) -> None:
        self.log, self.tokens, self.closed = log, list(tokens), False

    def fork(self) -> RecordingSession:
        return RecordingSession(self.log, self.tokens)

    def logits(self) -> np.ndarray:
        out = np.zeros(512, dtype=np.float32)
        out[len(self.tokens) % 512] = 1.0  # tells the caller how many tokens this session holds
        return out

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> RecordingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingModel:
    """Records every prefill (session) and every batched step, so the tests can count what was read."""

    def __init__(self, tok: CharTokenizer) -> None:
        self.tokenizer = tok
        self.prefills: list[list[int]] = []
        self.steps: list[list[list[int]]] = []

    def session(self, tokens: Sequence[int] = ()) -> RecordingSession:
        self.prefills.append(list(tokens))
        return RecordingSession([], tokens)

    def step(self, sessions: Sequence[RecordingSession], tokens: Sequence[Sequence[int]]) -> None:
        self.steps.append([list(t) for t in tokens])
        for s, t in zip(sessions, tokens, strict=True):
            s.tokens.extend(t)


def test_softmax_sums_to_one_and_survives_huge_logits() -> None:
    lg = np.array([1000.0, 999.0, -1000.0, 0.0], dtype=np.float32)
    p = R.softmax(lg)
    assert p.dtype == np.float64 and np.all(np.isfinite(p))
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert p[0] / p[1] == pytest.approx(math.e)
    assert np.argmax(p) == 0 and p[2] == 0.0
    assert R.softmax(np.zeros(4)) == pytest.approx([0.25] * 4)


def test_log_odds_sign_and_value() -> None:
    lg = np.log(np.array([0.6, 0.3, 0.1], dtype=np.float64))
    assert R.log_odds(lg, [0], [1]) == pytest.approx(math.log(2.0))
    assert R.log_odds(lg, [1], [0]) == pytest.approx(-math.log(2.0))
    assert R.log_odds(lg, [1, 2], [0]) == pytest.approx(math.log(0.4 / 0.6))  # several spellings: mass summed
    assert R.log_odds(lg, [0], [0]) == 0.0
    # unrelated tokens do not dilute the margin
    wide = np.concatenate([lg, np.full(100, 5.0)])
    assert R.log_odds(wide, [0], [1]) == pytest.approx(math.log(2.0))


def test_sigmoid_inverts_a_log_odds() -> None:
    assert R.sigmoid(0.0) == 0.5
    assert R.sigmoid(math.log(3.0)) == pytest.approx(0.75)
    assert R.sigmoid(2.0) + R.sigmoid(-2.0) == pytest.approx(1.0)


def test_answer_word_ids_take_both_spellings_first_tokens() -> None:
    model = RecordingModel(CharTokenizer())
    # "Yes" -> "Y"; " Yes" -> the folded " Y" piece
    assert R.option_ids(model, ["Yes"]) == sorted({ord("Y"), 256 + ord("Y")})
    assert R.option_ids(model, ["UNSAFE", "UN"]) == sorted({ord("U"), 256 + ord("U")})  # deduplicated
    assert R.option_ids(model, []) == []


def test_prompt_uses_the_template_and_folds_the_system_turn_when_it_has_none() -> None:
    with_system = RecordingModel(CharTokenizer())
    assert R.render(with_system, "SYS", "Q?", "Answer:") == "[system]SYS[user]Q?[assistant]Answer:"
    no_system = RecordingModel(CharTokenizer(system_role=False))
    assert R.render(no_system, "SYS", "Q?", "Answer:") == "[user]SYS\n\nQ?[assistant]Answer:"


def test_bos_is_prepended_only_when_the_model_wants_one() -> None:
    tok = CharTokenizer()
    assert R.ids_with_bos(RecordingModel(tok), "ab") == [1, ord("a"), ord("b")]
    assert R.ids_with_bos(RecordingModel(CharTokenizer(add_bos=False)), "ab") == [ord("a"), ord("b")]


def test_slot_logits_read_the_head_once_and_cut_each_fill() -> None:
    model = RecordingModel(CharTokenizer(add_bos=False))
    template = "HEAD" + R.MARKER + "T"
    fills = ["abc", "", "abcdefgh"]
    logits = R.slot_logits(model, template, fills, max_fill_tokens=4)
    assert model.prefills == [[ord(c) for c in "HEAD"]]  # one session for the shared head
    assert len(model.steps) == 1  # all fills in one batched step
    empty = model.tokenizer.encode("(empty)")
    assert model.steps[0] == [
        [ord(c) for c in "abc"] + [ord("T")],
        [*empty, ord("T")],
        [ord(c) for c in "abcd"] + [ord("T")],
    ]
    # each fill's logits come from its own fork: head + its own suffix
    assert [int(np.argmax(lg)) for lg in logits] == [4 + 3 + 1, 4 + len(empty) + 1, 4 + 4 + 1]


def test_iter_slot_logits_batches_in_order() -> None:
    model = RecordingModel(CharTokenizer(add_bos=False))
    fills = ["a" * n for n in range(1, 6)]
    chunks = list(R.iter_slot_logits(model, R.MARKER, fills, max_fill_tokens=64, batch=2))
    assert [len(c) for c in chunks] == [2, 2, 1] and len(model.prefills) == 1
    assert [int(np.argmax(lg)) for c in chunks for lg in c] == [1, 2, 3, 4, 5]
    assert list(R.iter_slot_logits(model, R.MARKER, [], 64)) == []
