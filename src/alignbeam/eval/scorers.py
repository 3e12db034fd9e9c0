"""Utility scorers: is a response right? GSM8K numbers, multiple-choice letters, PubMedQA labels, and pass@1 by
running generated code against the benchmark's tests.

Why lenient extraction: a safety method that changes the opening of a response (AlignBeam mixes the first
tokens) also changes how an answer is phrased. A scorer that only accepts one exact format would measure
formatting drift as lost utility; so each extractor accepts the common phrasings, preferring explicit markers
("#### 18", "Answer: C") over weaker cues (the last number, an option's text).

Why dispatch by registry entry: each benchmark's `DatasetInfo.scorer` names its scorer in `SCORERS`, so
`score_item` asks the item's set what it is rather than matching source strings, and a new set cannot be
scored by accident with another's rules. Generated code is run by `alignbeam.eval.execution` (a sandboxed
subprocess, never this process; as root it refuses to run without a sandbox unless `allow_unsandboxed`);
`ExecResult`, `run_program` and `sandbox_user` are re-exported here.
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets import entry_for_source
from alignbeam.eval.execution import ExecResult, run_program, sandbox_user

# --------------------------------------------------------------------------------------------------------------
# GSM8K

_NUM = r"-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_HASHES = re.compile(rf"####\s*\$?\s*({_NUM})")
_BOXED = re.compile(rf"\\boxed\{{\s*\\?\$?\s*({_NUM})")
_ANSWER_IS = re.compile(rf"(?i:answer)\s*(?i:is\s*)?[:=]?\s*[*$\\(\s]*({_NUM})")
_ANY_NUM = re.compile(_NUM)


def normalize_number(text: str) -> Decimal | None:
    """'$1,234.50' -> 1234.5, '18.0' -> 18; None when it is not a number. Decimal: no float rounding surprises."""
    s = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def extract_number(response: str) -> str | None:
    """The final numeric answer: '#### N', else '\\boxed{N}', else 'answer is N', else the last number."""
    for pattern in (_HASHES, _BOXED, _ANSWER_IS):
        hits = pattern.findall(response)
        if hits:
            return hits[-1]
    hits = _ANY_NUM.findall(response)
    return hits[-1] if hits else None


def gsm8k_correct(response: str, reference: Mapping[str, Any] | str | float) -> bool:
    """True when the response's final number equals the reference answer (a dict with 'answer', or the value)."""
    ref = reference.get("answer") if isinstance(reference, Mapping) else reference
    want = normalize_number(str(ref).rsplit("####", 1)[-1])
    got_s = extract_number(response)
    got = normalize_number(got_s) if got_s is not None else None
    return want is not None and got is not None and got == want


# --------------------------------------------------------------------------------------------------------------
# multiple choice


def _letters(options: Mapping[str, str] | None) -> str:
    return "".join(sorted(options)) if options else "ABCD"


def extract_choice(response: str, options: Mapping[str, str] | None = None) -> str | None:
    """The chosen option letter, or None when the response does not commit to one.

    In order: an explicit statement ("Answer: C", "the correct option is (B)"; the last one wins, since
    reasoning comes before the conclusion); a letter opening the response ("C.", "(C)", "**C**"); a single
    distinct bracketed letter; a single option whose text the response quotes.
    """
    text = response.strip()
    if not text:
        return None
    letters = _letters(options)
    L = f"[{re.escape(letters)}]"
    lead = (
        r"(?i:answer|correct (?:option|choice)|best (?:option|choice)|i (?:would )?(?:choose|pick|select))"
        r"\s*(?i:is|would be)?\s*(?i:option|choice)?\s*[:\-]?\s*[\(\[*\"']*\s*"
    )
    # a capital letter not followed by a word; a lower-case one only before punctuation or the end ("the answer
    # is a combination of ..." must not read as option A)
    explicit = [(m.start(), m.group(1)) for m in re.finditer(rf"{lead}({L})(?![A-Za-z0-9])", text)]
    explicit += [
        (m.start(), m.group(1).upper())
        for m in re.finditer(rf"{lead}([{re.escape(letters.lower())}])(?=\s*$|[\)\].,:;!*])", text)
    ]
    if explicit:
        return max(explicit)[1]
    m = re.match(rf"^[\W_]*?[\(\[]?({L})(?:[\)\].:*]|\s*$)", text)
    if m:
        return m.group(1)
    bracketed = set(re.findall(rf"[\(\[]({L})[\)\]]", text))
    if len(bracketed) == 1:
        return bracketed.pop()
    if options:
        low = text.lower()
        quoted = {k: str(v).strip().rstrip(".").lower() for k, v in options.items()}
        hits = [k for k, v in quoted.items() if v and v in low]
        # an option that is part of a longer quoted option ("X" inside "X and Y") is not a separate choice
        hits = [k for k in hits if not any(k != o and quoted[k] in quoted[o] for o in hits)]
        if len(hits) == 1:
            return hits[0]
    return None


def mcq_correct(response: str, reference: Mapping[str, Any] | str) -> bool:
    """True when the extracted letter equals the reference letter (a dict with 'answer' and 'options', or a letter)."""
    if isinstance(reference, Mapping):
        want, options = str(reference["answer"]).strip().upper(), reference.get("options")
    else:
        want, options = str(reference).strip().upper(), None
    return extract_choice(response, options) == want


# --------------------------------------------------------------------------------------------------------------
# PubMedQA

_YNM = r"(yes|no|maybe)"


def extract_yes_no_maybe(response: str) -> str | None:
    """'Answer: no' (last wins), else a response that opens with the label, else the only label word used."""
    t = response.strip().lower()
    explicit = re.findall(rf"answer\s*(?:is)?\s*[:\-]?\s*[*\"'\s]*{_YNM}\b", t)
    if explicit:
        return explicit[-1]
    m = re.match(rf"^[\W_]*{_YNM}\b", t)
    if m:
        return m.group(1)
    words = set(re.findall(rf"\b{_YNM}\b", t))
    return words.pop() if len(words) == 1 else None


def pubmedqa_correct(response: str, reference: Mapping[str, Any] | str) -> bool:
    """True when the response's yes/no/maybe equals the reference label."""
    want = str(reference["answer"] if isinstance(reference, Mapping) else reference).strip().lower()
    return extract_yes_no_maybe(response) == want


# --------------------------------------------------------------------------------------------------------------
# code: extraction and program building

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_START = re.compile(r"^[ \t]*(?:def |class |import |from \S+ import |@\w)", re.M)


def _parses(code: str) -> bool:
    try:
        ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    return True


def _trim_to_code(text: str) -> str | None:
    """Raw (unfenced) text: drop leading prose before the first def/import, then trailing prose until it parses."""
    if _parses(text):
        return text
    m = _CODE_START.search(text)
    if not m:
        return None
    lines = text[m.start() :].splitlines()
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end])
        if _parses(chunk):
            return chunk
    return "\n".join(lines)  # still code-like: let the interpreter report the syntax error


def _defines(code: str, name: str) -> re.Match[str] | None:
    return re.search(rf"^([ \t]*)def\s+{re.escape(name)}\s*\(", code, re.M)


def extract_code(response: str, entry_point: str | None = None) -> str | None:
    """The code in a response: a ```python (or bare ```) block, preferring the one that defines `entry_point`
    (a second block is often example usage); else the raw text trimmed to its code. None when there is none.

    Indentation is kept, so a bare function body still fits under its HumanEval signature.
    """
    blocks = [
        body
        for lang, body in _FENCE.findall(response)
        if lang.lower() in ("", "python", "py", "python3") and body.strip()
    ]
    if blocks:
        if entry_point:
            for b in blocks:
                if _defines(b, entry_point):
                    return b.rstrip() + "\n"
        return blocks[0].rstrip() + "\n"
    if not response.strip():
        return None
    code = _trim_to_code(response.strip("\n"))
    return code.rstrip() + "\n" if code and code.strip() else None


def build_humaneval_program(code: str, reference: Mapping[str, Any]) -> str:
    """prompt + completion (+ tests + `check(entry_point)`).

    A completion that redefines the function is appended after the prompt (which keeps the prompt's imports
    and helper functions; the redefinition wins); a bare body is appended to the signature, indented if the
    model dropped the indentation.
    """
    prompt, entry, test = str(reference["prompt"]), str(reference["entry_point"]), str(reference["test"])
    if not prompt.endswith("\n"):
        prompt += "\n"
    m = _defines(code, entry)
    if m:
        completion = "\n" + (textwrap.dedent(code) if m.group(1) else code)
    else:
        lines = code.splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        if first and not first[:1].isspace():
            lines = [("    " + ln) if ln.strip() else ln for ln in lines]
        completion = "\n".join(lines) + "\n"
    return f"{prompt}{completion}\n\n{test}\n\ncheck({entry})\n"


def build_mbpp_program(code: str, reference: Mapping[str, Any]) -> str:
    """test imports + setup + code + the assert lines."""
    imports = "\n".join(reference.get("test_imports") or [])
    setup = str(reference.get("test_setup_code") or "")
    tests = "\n".join(reference["test_list"])
    return f"{imports}\n{setup}\n{code}\n\n{tests}\n"


def mbpp_entry_point(reference: Mapping[str, Any]) -> str | None:
    """The function the tests call: a def of the reference code named in the tests, else the first non-builtin call."""
    tests = "\n".join(reference.get("test_list") or [])
    for name in re.findall(r"def\s+(\w+)\s*\(", str(reference.get("code", ""))):
        if re.search(rf"\b{re.escape(name)}\s*\(", tests):
            return name
    for name in re.findall(r"(\w+)\s*\(", tests):
        if not hasattr(builtins, name) and name not in ("isclose",):
            return name
    return None


# --------------------------------------------------------------------------------------------------------------
# pass@1: extract, build, run in the sandbox


def humaneval_pass(response: str, reference: Mapping[str, Any], timeout: float = 10.0, **kw: Any) -> ExecResult:
    """pass@1 for one HumanEval response (reference: task_id, prompt, entry_point, test)."""
    code = extract_code(response, str(reference["entry_point"]))
    if code is None:
        return ExecResult(False, "no_code")
    return run_program(build_humaneval_program(code, reference), timeout=timeout, **kw)


def mbpp_pass(response: str, reference: Mapping[str, Any], timeout: float = 10.0, **kw: Any) -> ExecResult:
    """pass@1 for one MBPP response (reference: test_list, optional test_imports / test_setup_code / code)."""
    code = extract_code(response, mbpp_entry_point(reference))
    if code is None:
        return ExecResult(False, "no_code")
    return run_program(build_mbpp_program(code, reference), timeout=timeout, **kw)


# --------------------------------------------------------------------------------------------------------------
# dispatch by the item's registry entry

#: (response, reference, timeout, allow_unsandboxed) -> correct; keyed by `DatasetInfo.scorer`. "refusal" is
#: absent on purpose: safety sets are graded by the refusal judge, not here. `allow_unsandboxed` only matters to
#: the scorers in `EXECUTES_CODE` (see `alignbeam.eval.execution.sandbox`); the others ignore it.
SCORERS: dict[str, Callable[[str, Mapping[str, Any], float, bool], bool]] = {
    "gsm8k": lambda response, reference, timeout, allow_unsandboxed: gsm8k_correct(response, reference),
    "mcq": lambda response, reference, timeout, allow_unsandboxed: mcq_correct(response, reference),
    "pubmedqa": lambda response, reference, timeout, allow_unsandboxed: pubmedqa_correct(response, reference),
    "humaneval": lambda response, reference, timeout, allow_unsandboxed: (
        humaneval_pass(response, reference, timeout=timeout, allow_unsandboxed=allow_unsandboxed).passed
    ),
    "mbpp": lambda response, reference, timeout, allow_unsandboxed: (
        mbpp_pass(response, reference, timeout=timeout, allow_unsandboxed=allow_unsandboxed).passed
    ),
}
#: the scorers that run generated code
EXECUTES_CODE = frozenset({"humaneval", "mbpp"})


def _scorer_key(item: Any) -> str | None:
    entry = entry_for_source(str(item.source))
    return entry.scorer if entry is not None else None


def executes_code(item: Any) -> bool:
    """Whether scoring `item` runs generated code (so needs the sandbox)."""
    return _scorer_key(item) in EXECUTES_CODE


def score_item(item: Any, response: str, timeout: float = 10.0, *, allow_unsandboxed: bool = False) -> bool:
    """Correctness of `response` for a utility `Item` (anything with `.source` and `.reference`).

    The scorer is the one the item's registry entry names (found by `.source`); items of a safety set, wrapped
    in a jailbreak template or from a user's file have no task scorer and raise. `allow_unsandboxed`: code
    scorers may run generated code as root without a sandbox when none is available (otherwise they raise).
    """
    src = str(item.source)
    key = _scorer_key(item)
    scorer = SCORERS.get(key) if key is not None else None
    if scorer is None:
        raise AlignBeamError(f"no utility scorer for source {src!r} (safety sets are scored by the refusal judge)")
    return scorer(response, item.reference, timeout, allow_unsandboxed)


__all__ = [
    "EXECUTES_CODE",
    "SCORERS",
    "ExecResult",
    "build_humaneval_program",
    "build_mbpp_program",
    "executes_code",
    "extract_choice",
    "extract_code",
    "extract_number",
    "extract_yes_no_maybe",
    "gsm8k_correct",
    "humaneval_pass",
    "mbpp_entry_point",
    "mbpp_pass",
    "mcq_correct",
    "normalize_number",
    "pubmedqa_correct",
    "run_program",
    "sandbox_user",
    "score_item",
]
