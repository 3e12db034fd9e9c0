"""Sessions are resources with an owner: a request that cannot fit is refused before anything opens, and a request
that fails or is abandoned mid-way leaves every llama.cpp sequence slot free (real models, small slot counts)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tests.conftest import require_embedded

from alignbeam import AlignBeam, ConfigError, Judge, load_model
from alignbeam.engines.base import Message

SLOTS = 6
Q = "Name a primary color."


class FailingJudge(Judge):
    """A judge whose scoring breaks (a backend gone, a bug): the request must fail without leaking sessions."""

    def score(self, messages: Sequence[Message], responses: Sequence[str]) -> list[float]:
        raise RuntimeError("judge backend gone")


@pytest.fixture(scope="module")
def small() -> AlignBeam:
    require_embedded("smollm2-135m")
    draft = load_model("smollm2-135m", n_seq_max=SLOTS)  # a separate load: its own slot count
    return AlignBeam(draft=draft, anchor=draft, judge=None, preset="paper")


def _all_free(ab: AlignBeam) -> bool:
    return ab.draft.free_sessions == ab.draft.max_sessions == SLOTS


def test_k_above_the_slots_is_refused_before_any_session_opens(small: AlignBeam) -> None:
    # draft and anchor are one model here: K draft beams + K anchor beams share its slots
    with pytest.raises(ConfigError, match=r"k is 4, too many for smollm2-135m.*6 sequence slots"):
        small.generate(Q, k=4, max_new_tokens=8)
    assert _all_free(small)
    with pytest.raises(ConfigError, match="too many"):
        small.check_fits(Q, k=40)
    assert small.generate(Q, k=3, max_new_tokens=8).text  # 3 + 3 = 6 slots: fits exactly
    assert _all_free(small)


def test_a_request_that_fails_mid_way_leaves_every_slot_free(small: AlignBeam) -> None:
    failing = AlignBeam(draft=small.draft, anchor=small.anchor, judge=FailingJudge(), preset="paper")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="judge backend gone"):
            failing.generate(Q, k=3, max_new_tokens=8)
        assert _all_free(small)
    # an abandoned stream (a client gone) closes its sessions too
    stream = small.stream(Q, k=3, max_new_tokens=16, judge_after=0, use_judge=False)
    next(iter(stream), None)
    stream.close()  # type: ignore[attr-defined]
    assert _all_free(small)
    for _ in range(20):
        assert small.generate(Q, k=3, max_new_tokens=6).completion_tokens > 0
    assert _all_free(small)
