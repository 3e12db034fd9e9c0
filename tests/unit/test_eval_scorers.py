"""Utility scorers: answer extraction cases, and the code sandbox on real HumanEval / MBPP items.

Only a handful of programs are executed (each is a fresh interpreter); the rest are pure string checks.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets import DATASETS, REFUSAL, Item, load
from alignbeam.eval.scorers import (
    SCORERS,
    build_humaneval_program,
    extract_choice,
    extract_code,
    extract_number,
    extract_yes_no_maybe,
    gsm8k_correct,
    humaneval_pass,
    mbpp_entry_point,
    mbpp_pass,
    mcq_correct,
    pubmedqa_correct,
    run_program,
    sandbox_user,
    score_item,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Item]:
    return {it.id: it for it in load("humaneval", data_dir=DATA)}


# GSM8K ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "number"),
    [
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = $18 a day.\n#### 18", "18"),
        ("#### 18\nThat is 3 more than 15.", "18"),  # the marker beats a later number
        ("The answer is $1,234.50.", "1,234.50"),
        ("So the total is \\boxed{42}. Check: 40 + 2.", "42"),
        ("Final answer: **-7**", "-7"),
        ("So she makes 18 dollars in 2 days? No: 18. Let me know if that helps!", "18"),
        ("Step 1: 5 apples. Step 2: 5 + 7 = 12", "12"),
        ("There is nothing to compute here.", None),
    ],
)
def test_gsm8k_number_extraction(response: str, number: str | None) -> None:
    assert extract_number(response) == number


@pytest.mark.parametrize(
    ("response", "answer", "ok"),
    [
        ("#### 18", "18", True),
        ("The answer is 18.0", "18", True),
        ("The answer is $18.00.", "18", True),
        ("#### 2,125", "2125", True),
        ("#### 2125", "2,125", True),
        ("The answer is 17.", "18", False),
        ("I cannot help with that.", "18", False),
    ],
)
def test_gsm8k_correct(response: str, answer: str, ok: bool) -> None:
    assert gsm8k_correct(response, {"answer": answer}) is ok


def test_gsm8k_on_a_real_item() -> None:
    item = load("gsm8k", data_dir=DATA)[0]
    assert gsm8k_correct(item.reference["solution"], item.reference)  # the gold solution scores as correct
    assert score_item(item, "She sells 9 eggs at $2 each, so she makes $18 every day.")
    assert not score_item(item, "She makes $16.")


# multiple choice -----------------------------------------------------------------------------------------------

OPTS = {
    "A": "paralysis of the facial muscles.",
    "B": "paralysis of the facial muscles and loss of taste.",
    "C": "lacrimation",
    "D": "decreased salivation",
}


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("Answer: C", "C"),
        ("The correct answer is (B).", "B"),
        ("C. lacrimation", "C"),
        ("(D) decreased salivation", "D"),
        ("**B**", "B"),
        ("B", "B"),
        ("answer: b", "B"),
        ("Reasoning... A is tempting, but the answer is D.", "D"),
        ("The answer is C.\n\nExplanation: A is wrong because it ignores taste.", "C"),
        ("I think it's paralysis of the facial muscles and loss of taste.", "B"),  # the longer option wins
        ("A lesion at this point causes lacrimation problems.", "C"),  # 'A' as an article is not option A
        ("The answer is a combination of factors.", None),
        ("Answer: Cardiac involvement", None),
        ("I'm not sure.", None),
        ("", None),
    ],
)
def test_mcq_extraction(response: str, letter: str | None) -> None:
    assert extract_choice(response, OPTS) == letter


def test_mcq_on_real_items() -> None:
    medqa = load("medqa", data_dir=DATA)[0]  # answer B
    assert mcq_correct("The resident should tell the attending. Answer: B", medqa.reference)
    assert mcq_correct(medqa.reference["answer_text"], medqa.reference)  # the option text alone
    assert not mcq_correct("Answer: A", medqa.reference)
    mmlu = load("mmlu", data_dir=DATA, subjects="anatomy")[0]
    assert score_item(mmlu, f"Answer: {mmlu.reference['answer']}")
    assert mcq_correct("(c)", "C") is False  # lower-case in brackets alone is not a committed answer
    assert mcq_correct("Answer: (C)", "C")


@pytest.mark.parametrize(
    ("response", "label"),
    [
        ("Yes, mitochondria play a role.", "yes"),
        ("Answer: no", "no"),
        ("The evidence is mixed, so maybe.", "maybe"),
        ("No. Although one might say yes, there is no evidence.", "no"),
        ("Based on the context, the answer is yes. There is no doubt.", "yes"),
        ("It is unclear.", None),
    ],
)
def test_pubmedqa_extraction(response: str, label: str | None) -> None:
    assert extract_yes_no_maybe(response) == label


def test_pubmedqa_correct() -> None:
    item = load("pubmedqa", data_dir=DATA, n=1, seed=0)[0]
    want = item.reference["answer"]
    assert pubmedqa_correct(f"Answer: {want}", item.reference)
    assert not pubmedqa_correct("Answer: " + ("no" if want != "no" else "yes"), item.reference)


def test_score_item_rejects_safety_items() -> None:
    with pytest.raises(AlignBeamError, match="refusal judge"):
        score_item(load("advbench", n=1, data_dir=DATA)[0], "Sure")


def test_every_registry_entry_names_a_scorer_for_its_kind() -> None:
    """Utility sets name a task scorer that exists; safety sets name the refusal path, which has no task scorer."""
    assert REFUSAL not in SCORERS
    for name, entry in DATASETS.items():
        if entry.kind == "utility":
            assert entry.scorer in SCORERS, name
        else:
            assert entry.scorer == REFUSAL, name


def test_score_item_uses_the_scorer_its_registry_entry_names(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, Any, float, bool]] = []

    def spy(key: str) -> Any:
        def scorer(response: str, reference: Any, timeout: float, allow_unsandboxed: bool) -> bool:
            calls.append((key, response, reference, timeout, allow_unsandboxed))
            return True

        return scorer

    for key in SCORERS:
        monkeypatch.setitem(SCORERS, key, spy(key))
    for name, entry in DATASETS.items():
        for source in entry.sources:  # mbpp's full variant ("mbpp_full") goes to the mbpp scorer too
            item = Item(f"{source}-0", "p", "utility" if entry.kind == "utility" else "harmful", None, {"n": 1}, source)
            calls.clear()
            if entry.scorer == REFUSAL:
                with pytest.raises(AlignBeamError, match="refusal judge"):
                    score_item(item, "Sure")
                assert not calls, name
            else:
                assert score_item(item, "resp", timeout=3.0) is True
                assert calls == [(entry.scorer, "resp", {"n": 1}, 3.0, False)], name
                calls.clear()  # the opt-in reaches the scorer
                assert score_item(item, "resp", timeout=3.0, allow_unsandboxed=True) is True
                assert calls == [(entry.scorer, "resp", {"n": 1}, 3.0, True)], name
    for source in ("advbench+pyrit", "my_prompts", ""):  # wrapped items and users' files belong to no entry
        with pytest.raises(AlignBeamError, match="no utility scorer"):
            score_item(Item("x", "p", "utility", None, {}, source), "Sure")


# code extraction and program building (no execution) -----------------------------------------------------------


def test_extract_code_variants() -> None:
    assert extract_code("Here:\n```python\ndef f(x):\n    return x\n```\nDone.") == "def f(x):\n    return x\n"
    assert extract_code("```\nprint(1)\n```") == "print(1)\n"
    two = "```python\nprint(f(2))\n```\nand\n```python\ndef f(x):\n    return 2 * x\n```"
    assert extract_code(two, entry_point="f") == "def f(x):\n    return 2 * x\n"  # the block defining it
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1\n"  # cut off at max tokens
    assert extract_code("```bash\npip install x\n```") is None
    raw = "Sure! Here is the function:\n\ndef f(x):\n    return x + 1\n\nThis adds one."
    assert extract_code(raw) == "def f(x):\n    return x + 1\n"
    assert extract_code("    return sorted(l)\n") == "    return sorted(l)\n"  # a bare body keeps its indentation
    assert extract_code("I'm sorry, but I can't help with that.") is None
    assert extract_code("   \n") is None


def test_build_humaneval_program_body_and_full_function(humaneval: dict[str, Item]) -> None:
    ref = humaneval["HumanEval/0"].reference
    body = build_humaneval_program("    return False\n", ref)
    assert body.startswith(ref["prompt"] + "    return False\n") and body.endswith("check(has_close_elements)\n")
    unindented = build_humaneval_program("return False\n", ref)
    assert ref["prompt"] + "    return False\n" in unindented
    full = build_humaneval_program("def has_close_elements(numbers, threshold):\n    return False\n", ref)
    assert full.startswith(ref["prompt"])  # the prompt's imports stay; the redefinition follows it
    assert "\ndef has_close_elements(numbers, threshold):\n    return False\n" in full


def test_mbpp_entry_point() -> None:
    item = load("mbpp", data_dir=DATA)[0]
    assert mbpp_entry_point(item.reference) == "remove_Occ"
    assert mbpp_entry_point({"test_list": ["assert set(similar_elements((3, 4), (4,))) == {4}"]}) == "similar_elements"


# the sandbox (each case below runs one fresh interpreter) -------------------------------------------------------


def test_humaneval_canonical_passes_and_wrong_fails(humaneval: dict[str, Item]) -> None:
    item = humaneval["HumanEval/0"]
    ok = humaneval_pass(item.reference["canonical_solution"], item.reference)
    assert ok.passed and ok.reason == "passed", ok
    full = "```python\n" + item.reference["prompt"] + item.reference["canonical_solution"] + "```"
    assert score_item(item, full)
    wrong_code = "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```"
    wrong = humaneval_pass(wrong_code, item.reference)
    assert not wrong.passed and wrong.reason == "failed" and wrong.exception == "AssertionError"
    refusal = humaneval_pass("I'm sorry, I can't write that.", item.reference)
    assert refusal.reason == "no_code" and not refusal.passed


def test_mbpp_reference_code_passes_its_tests() -> None:
    items = load("mbpp", data_dir=DATA, n=2, seed=0)
    for it in items:
        r = mbpp_pass("```python\n" + it.reference["code"] + "\n```", it.reference)
        assert r.passed, (it.id, r)
    broken = mbpp_pass("def nothing():\n    pass\n", items[0].reference)
    assert not broken.passed and broken.reason == "error" and broken.exception == "NameError"


def test_infinite_loop_times_out() -> None:
    r = run_program("while True:\n    pass\n", timeout=1.0)
    assert r.reason == "timeout" and not r.passed
    assert r.seconds < 5


def test_memory_bombs_are_stopped() -> None:
    at_once = run_program("x = bytearray(8 * 1024 ** 3)\n", timeout=10.0)
    assert not at_once.passed and at_once.reason == "error" and at_once.exception == "MemoryError"
    growing = run_program("a = []\nwhile True:\n    a.append(bytearray(10 ** 7))\n", timeout=10.0)
    assert not growing.passed and growing.reason in ("error", "timeout")
    assert growing.seconds < 10.5


def test_early_exit_is_not_a_pass() -> None:
    for prog in ("import sys\nsys.exit(0)\nassert False\n", "import os\nos._exit(0)\nassert False\n"):
        r = run_program(prog, timeout=5.0)
        assert not r.passed and r.reason == "error", r


def test_sandbox_environment() -> None:
    prog = (
        "import os, resource, sys\n"
        "assert set(os.environ) <= {'PATH', 'LANG', 'LC_ALL', 'HOME', 'TMPDIR', 'PWD'}, sorted(os.environ)\n"
        "assert sys.stdin.read() == ''\n"
        "assert sorted(os.listdir('.')) == ['program.py', 'runner.py'], os.listdir('.')\n"
        "assert resource.getrlimit(resource.RLIMIT_AS)[0] == 1024 ** 3\n"
        "assert resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)\n"
        "assert sys.flags.isolated == 1\n"
        "print('hello from the sandbox')\n"
    )
    r = run_program(prog, timeout=5.0)
    assert r.passed, r
    assert "hello from the sandbox" in r.stdout


def test_children_are_killed_with_the_program() -> None:
    """A child it forks (and execs, so it is findable by a marker in its command line: in bwrap's pid namespace
    the pid it sees means nothing out here) is gone once run_program returns."""
    mark = f"alignbeam-orphan-{secrets.token_hex(4)}"
    prog = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {mark!r}])\n"
        "time.sleep(0.3)\n"
    )
    r = run_program(prog)
    assert r.passed, r

    def alive() -> list[psutil.Process]:
        procs = psutil.process_iter(["cmdline", "status"])
        return [p for p in procs if mark in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 2.0
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()


ESCAPE = """
import os, shutil
target = {target!r}
try:
    leaked = open('/etc/hostname').read()  # hidden by bwrap; without it readable, but only affects this process
except OSError:
    pass
os.chdir('/')
for _ in os.walk('/proc/self'):
    break
try:
    os.remove(target)
except OSError:
    pass
try:
    shutil.rmtree(os.path.dirname(target))
except OSError:
    pass
raise SystemExit(0)
"""


def test_escaping_solution_cannot_crash_the_tester(tmp_path: Path) -> None:
    sentinel = tmp_path / "keep" / "sentinel.txt"
    sentinel.parent.mkdir()
    sentinel.write_text("x")
    r = run_program(ESCAPE.format(target=str(sentinel)), timeout=5.0)
    assert not r.passed and r.reason == "error" and r.exception == "SystemExit"
    assert Path.cwd().exists()
    if r.sandbox != "none":  # bwrap hides the folder; as `nobody` (no bwrap) it may not delete root's files
        assert sentinel.exists()


@pytest.mark.skipif(
    not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("python3", path="/usr/bin")),
    reason="needs root and a system /usr/bin/python3 to exercise the privilege drop",
)
def test_privilege_drop_protects_files_outside(tmp_path: Path) -> None:
    python = "/usr/bin/python3"
    assert sandbox_user(python) is not None
    sentinel = tmp_path / "keep" / "sentinel.txt"
    sentinel.parent.mkdir()
    sentinel.write_text("x")
    r = run_program(ESCAPE.format(target=str(sentinel)), timeout=5.0, python=python)
    assert r.reason == "error" and r.exception == "SystemExit", r
    assert sentinel.read_text() == "x"
    who = run_program("import os\nassert os.getuid() != 0\n", python=python)
    assert who.passed, who
