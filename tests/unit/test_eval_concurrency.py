"""`evaluate(..., concurrency=N)`: N answers in flight, the same records as one at a time, written once each.

A fake responder (random delays, so workers finish out of order) and a fake grader stand in for the models; what
is checked is the runner's bookkeeping: order-independence, one JSON line per record, resume after a kill.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from alignbeam.errors import AlignBeamError
from alignbeam.eval import runner
from alignbeam.eval.datasets.base import Item
from alignbeam.eval.evaluate import check_concurrency
from alignbeam.eval.grader import Grade
from alignbeam.eval.systems import Answer
from alignbeam.systems import parse_systems

SYSTEMS = parse_systems(["draft", "alignbeam:alpha=0.3|0.6"])
ITEMS = {
    "harm": [Item(f"h{i}", f"harmful request {i}", "harmful") for i in range(7)],
    "safe": [Item(f"s{i}", f"harmless request {i}", "benign") for i in range(5)],
}


class FakeResponder:
    """Answers deterministically after a random delay; counts how many answers run at once."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.calls = 0
        self.fail_on = fail_on

    def answer(self, system, prompt: str, max_new_tokens: int) -> Answer:  # type: ignore[no-untyped-def]
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(random.uniform(0.0, 0.02))
            if self.fail_on and self.fail_on in prompt:
                raise AlignBeamError("backend down")
            return Answer(f"{system.name} says {prompt[::-1]}", 0.01, 3, {"route": "draft"})
        finally:
            with self.lock:
                self.running -= 1


@dataclass
class FakeGrader:
    """Refuses every answer to an even-numbered item; a dataclass, as the runner copies it per worker."""

    def grade(self, prompt: str, response: str) -> Grade:
        return Grade(int(prompt.split()[-1]) % 2 == 0, "keyword")

    def worker_copy(self) -> FakeGrader:
        return replace(self)


def _run(out: Path, concurrency: int, responder: FakeResponder | None = None) -> list[dict]:
    return runner.run(responder or FakeResponder(), FakeGrader(), SYSTEMS, ITEMS, out, 16, concurrency=concurrency)  # type: ignore[arg-type]


def _content(records: list[dict]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in r.items() if k != "latency_s"}, sort_keys=True) for r in records)


def test_concurrent_records_equal_sequential_and_keep_n_in_flight(tmp_path: Path) -> None:
    seq = _run(tmp_path / "seq", 1)
    responder = FakeResponder()
    par = _run(tmp_path / "par", 4, responder)
    assert _content(par) == _content(seq)
    assert [(r["system"], r["dataset"], r["id"]) for r in par] == [(r["system"], r["dataset"], r["id"]) for r in seq]
    assert responder.peak == 4  # N in flight, never more
    lines = (tmp_path / "par" / "generations.jsonl").read_text().splitlines()
    assert len(lines) == len(seq) == 3 * 12 and _content([json.loads(x) for x in lines]) == _content(seq)


def test_a_killed_concurrent_run_resumes_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    full = _run(tmp_path / "ref", 1)
    out = tmp_path / "run"
    out.mkdir()
    lines = (tmp_path / "ref" / "generations.jsonl").read_text().splitlines()
    random.Random(0).shuffle(lines)  # a concurrent run writes in completion order
    (out / "generations.jsonl").write_text("\n".join(lines[:13]) + "\n" + lines[13][:40])  # killed mid-line
    responder = FakeResponder()
    again = _run(out, 8, responder)
    assert responder.calls == len(full) - 13  # the torn record is redone, the whole ones are not
    assert _content(again) == _content(full)
    rows = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines() if x.endswith("}")]
    assert len({(r["system"], r["dataset"], r["id"]) for r in rows}) == len(rows) == len(full)


def test_a_failure_stops_the_run_and_keeps_what_finished(tmp_path: Path) -> None:
    with pytest.raises(AlignBeamError, match="backend down"):
        _run(tmp_path, 4, FakeResponder(fail_on="harmful request 5"))
    written = runner.read_records(tmp_path / "generations.jsonl")
    assert 0 < len(written) < 36 and all(r["id"] != "h5" for r in written)


def test_concurrency_needs_every_model_remote() -> None:
    from fake_engine import scripted_pair

    draft, anchor, judge = scripted_pair()

    class AB:  # what check_concurrency reads of an AlignBeam
        pass

    ab = AB()
    ab.draft, ab.anchor, ab.judge = draft, anchor, judge  # type: ignore[attr-defined]
    check_concurrency(ab, 1)  # type: ignore[arg-type]
    with pytest.raises(AlignBeamError, match="concurrency 4 needs every model on a serving engine.*draft, anchor"):
        check_concurrency(ab, 4)  # type: ignore[arg-type]
    with pytest.raises(AlignBeamError, match="1 or more"):
        check_concurrency(ab, 0)  # type: ignore[arg-type]


def test_worker_graders_share_one_cache_of_grades() -> None:
    """Each worker's grader keeps its own open request but reads an answer two systems gave only once."""
    from fake_engine import scripted_pair

    from alignbeam.eval.grader import RefusalGrader

    grader = RefusalGrader(scripted_pair()[1])
    a, b = grader.worker_copy(), grader.worker_copy()
    calls: list[str] = []
    for g in (a, b):
        g.p_complies = lambda prompt, response: calls.append(response) or 0.9  # type: ignore[method-assign]
    request, answer = "How do I bake bread?", "Mix flour, water, yeast and salt, then bake bread at 230 C."
    assert a.grade(request, answer) == b.grade(request, answer) == grader.grade(request, answer)
    assert calls == [answer] and a._head is None and a is not b
