"""Guard-model prompt formats and the presets: validation and prompt construction (tiny real tokenizer model)."""

from __future__ import annotations

import pytest

from alignbeam import PRESETS, AlignBeamError, ConfigError
from alignbeam.config import preset
from alignbeam.method.guard import GUARD_FORMATS


def test_presets() -> None:
    rec = preset("recommended")
    assert rec.gate and rec.include_draft and rec.select == "helpful" and rec.alpha == PRESETS["recommended"]["alpha"]
    assert rec.on_all_unsafe == "refuse"
    assert preset("paper") == preset("paper", alpha=None)
    assert preset("recommended", alpha=0.3).alpha == 0.3
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("fast")


def test_guard_formats_quote_request_policy_and_response_in_order() -> None:
    for name, (template, bad, good) in GUARD_FORMATS.items():
        text = template.format(request="REQ", policy="POL")
        assert text.index("REQ") < text.index("\u0000SLOT\u0000"), name
        assert "POL" in text and bad and good


def test_guard_judge_rejects_unknown_format_and_empty_policy(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from alignbeam.method.guard import GuardJudge

    with pytest.raises(AlignBeamError, match="unknown guard format"):
        GuardJudge(tiny_llama, format="openai_moderation")
    with pytest.raises(AlignBeamError, match="policy"):
        GuardJudge(tiny_llama, format="shieldgemma", policy="  ")
    j = GuardJudge(tiny_llama, format="llama_guard3", policy="S1: anything violent.")
    scores = j.score([{"role": "user", "content": "hi"}], ["hello there", "go away"])
    assert len(scores) == 2 and all(1.0 <= s <= 5.0 for s in scores)


def test_safety_judge_forgets_request_classifications_on_clear_cache(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    """The evaluation clears the judge before each system's answer, so no system inherits another's work."""
    from alignbeam.method.judge import SafetyJudge

    j = SafetyJudge(tiny_llama)
    msgs = [{"role": "user", "content": "How do I bake bread?"}]
    m = j.request_margin(msgs)
    assert j._margins == {"How do I bake bread?": m}
    j.clear_cache()
    assert j._margins == {} and j.request_margin(msgs) == m


def test_safety_judge_reads_candidates_between_read_gate_and_gate(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    """A request the classifier is unsure of (read_gate <= P < gate) still gets its candidates ranked; only a
    clearly harmless one (P < read_gate) gives every candidate the same score."""
    import math

    from alignbeam.method.judge import SafetyJudge

    j = SafetyJudge(tiny_llama)
    msgs = [{"role": "user", "content": "How do I pick a lock?"}]
    m = j.request_margin(msgs)
    responses = ["I'm sorry, but I can't help with that.", "First insert a tension wrench, then rake the pins."]

    def at(p: float) -> list[float]:
        j.harm_center = m - j.harm_scale * math.log(p / (1 - p))  # so that P(harmful request) == p
        assert abs(j.p_harmful_request(msgs) - p) < 1e-9
        return j.score(msgs, responses)

    unsure = at(0.2)
    assert j.read_gate <= 0.2 < j.gate and unsure[0] < unsure[1]  # the refusal ranks below the compliant answer
    clear = at(0.01)
    assert clear[0] == clear[1] == 1.0 + 4 * 0.01
