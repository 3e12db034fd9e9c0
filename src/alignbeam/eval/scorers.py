"""Utility scorers: is a response right? GSM8K numbers, multiple-choice letters, PubMedQA labels, and pass@1 by
running generated code against the benchmark's tests.

Why lenient extraction: a safety method that changes the opening of a response (AlignBeam mixes the first
tokens) also changes how an answer is phrased. A scorer that only accepts one exact format would measure
formatting drift as lost utility; so each extractor accepts the common phrasings, preferring explicit markers
("#### 18", "Answer: C") over weaker cues (the last number, an option's text).

Why a subprocess: model-written code is untrusted and may loop forever, eat memory, print gigabytes, call
`sys.exit(0)` before the tests, or touch files. It never runs in this process. Each program runs in a fresh
`python -I` in its own temporary directory, with a wall-clock timeout, rlimits (address space, CPU seconds,
file size, no core dumps), an empty environment, stdin at EOF, its own process group (killed as a group), and,
when the tester runs as root (CI, containers), as the unprivileged `nobody` user. A pass requires the tests to
finish and the runner to print a per-run token afterwards, so an early `exit(0)` does not count as a pass.
This is containment for accidents, not a security boundary against deliberately hostile code (no seccomp,
no network or filesystem namespaces): code running as the same user could still signal the tester.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from alignbeam.errors import AlignBeamError

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
# the sandboxed run

Reason = Literal["passed", "failed", "timeout", "error", "no_code"]


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program: `reason` says why it did not pass ('failed' = a test assertion failed; 'error' =
    anything else: syntax error, exception, memory limit, a crash, exiting before the tests finished).
    `stderr` / `stdout` are tails (the program may print without bound; only the end is kept)."""

    passed: bool
    reason: Reason
    stderr: str = ""
    exception: str | None = None
    returncode: int | None = None
    seconds: float = 0.0
    stdout: str = ""


_EXC_MARK = "__ALIGNBEAM_EXCEPTION__"
_RC_FAILED, _RC_ERROR = 3, 4

# The runner is written next to the program. It compiles and execs the program under a __name__ that is not
# "__main__" (so `if __name__ == "__main__":` demo blocks, which often read stdin, do not run), reports the
# exception type on stderr, and prints the run's token only after everything ran. os._exit skips atexit
# handlers and lingering threads of the candidate.
_RUNNER = f"""\
import os, sys, traceback
_AE = AssertionError


def _emit(fd, s):
    try:
        os.write(fd, s.encode("utf-8", "replace"))
    except OSError:
        pass


def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:
            pass


def _main():
    with open("program.py", encoding="utf-8") as fh:
        src = fh.read()
    g = {{"__name__": "__candidate__", "__builtins__": __builtins__}}
    try:
        exec(compile(src, "program.py", "exec"), g)
    except BaseException as e:
        failed = isinstance(e, _AE)
        name = type(e).__name__
        g.clear()
        try:
            traceback.clear_frames(e.__traceback__)
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-6))
        except BaseException:
            tb = name + "\\n"
        _flush()
        _emit(2, tb + "\\n{_EXC_MARK} " + name + "\\n")
        os._exit({_RC_FAILED} if failed else {_RC_ERROR})
    _flush()
    _emit(1, "\\n__TOKEN__\\n")
    os._exit(0)


_main()
"""

_sandbox_ids_cache: dict[str, tuple[int, int] | None] = {}  # interpreter -> ids, probed once


def _nobody() -> tuple[int, int]:
    try:
        import pwd

        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except (ImportError, KeyError):
        return 65534, 65534


def _limits(memory_bytes: int, cpu_seconds: int, file_bytes: int, ids: tuple[int, int] | None) -> Any:
    """The preexec_fn: rlimits, then (as root) drop to nobody. Runs in the forked child before exec."""

    def preexec() -> None:
        import resource

        def cap(which: int, soft: int, hard: int | None = None) -> None:
            _, old_hard = resource.getrlimit(which)
            hard = soft if hard is None else hard
            if old_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, old_hard), min(hard, old_hard)
            resource.setrlimit(which, (soft, hard))

        cap(resource.RLIMIT_AS, memory_bytes)
        cap(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)
        cap(resource.RLIMIT_CORE, 0)
        cap(resource.RLIMIT_FSIZE, file_bytes)
        cap(resource.RLIMIT_NOFILE, 64)
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])

    return preexec


def _sandbox_ids(python: str) -> tuple[int, int] | None:
    """(uid, gid) to run as when we are root and `nobody` can run `python`; probed once per interpreter, else None.

    Why a probe: the interpreter may live under a directory `nobody` cannot read (a pyenv under /root, as on the
    project's machines); dropping privileges would then turn every program into an error, so we keep the
    current user instead and rely on the other limits.
    """
    if python in _sandbox_ids_cache:
        return _sandbox_ids_cache[python]
    result: tuple[int, int] | None = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        ids = _nobody()
        with tempfile.TemporaryDirectory(prefix="alignbeam-probe-") as tmp:
            os.chown(tmp, *ids)
            try:
                r = subprocess.run(
                    [python, "-I", "-c", "import os, sys; sys.exit(os.getuid() == 0)"],
                    cwd=tmp,
                    env={"PATH": "/usr/bin:/bin", "HOME": tmp},
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    preexec_fn=_limits(1 << 30, 30, 1 << 20, ids),
                )
                result = ids if r.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                result = None
    _sandbox_ids_cache[python] = result
    return result


def sandbox_user(python: str | None = None) -> tuple[int, int] | None:
    """The (uid, gid) generated code runs as, or None when it runs as the current user."""
    return _sandbox_ids(python or sys.executable)


def _kill_group(pid: int, wait: float = 0.5) -> None:
    """SIGKILL the program's process group, then wait (briefly) until it is gone: death after SIGKILL is
    asynchronous, and a forked child still running after we return could keep writing or burning CPU."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def _tail(fh: Any, limit: int) -> str:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - limit))
    return fh.read().decode("utf-8", "replace")


def run_program(
    program: str,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    file_mb: int = 16,
    drop_privileges: bool = True,
    stderr_tail: int = 2000,
    python: str | None = None,
) -> ExecResult:
    """Run a complete Python program in the sandbox described in the module docstring; never in this process.

    `python`: the interpreter (default: the one running alignbeam). `drop_privileges`: as root, run as `nobody`
    when that user can execute the interpreter (see `sandbox_user`).
    """
    if os.name != "posix":
        raise AlignBeamError("executing generated code needs a POSIX system (rlimits, process groups)")
    python = python or sys.executable
    token = secrets.token_hex(16)
    ids = _sandbox_ids(python) if drop_privileges else None
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    with (
        tempfile.TemporaryDirectory(prefix="alignbeam-exec-", ignore_cleanup_errors=True) as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        d = Path(tmp)
        (d / "program.py").write_text(program, encoding="utf-8")
        (d / "runner.py").write_text(_RUNNER.replace("__TOKEN__", token), encoding="utf-8")
        if ids is not None:
            os.chown(d, *ids)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [python, "-I", "-B", "runner.py"],
            cwd=d,
            env={**env, "HOME": tmp, "TMPDIR": tmp},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            start_new_session=True,  # its own process group, so children it spawns die with it
            preexec_fn=_limits(memory_mb << 20, max(1, int(timeout + 0.999)) + 1, file_mb << 20, ids),
        )
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            rc = proc.wait()
        finally:
            _kill_group(proc.pid)
        seconds = time.monotonic() - t0
        stdout_s, stderr_s = _tail(out, 4096), _tail(err, max(stderr_tail, 4096))
    exc = None
    m = re.findall(rf"{_EXC_MARK} (\w+)", stderr_s)
    if m:
        exc = m[-1]
        stderr_s = stderr_s.replace(f"\n{_EXC_MARK} {exc}\n", "\n")
    stderr_s = stderr_s[-stderr_tail:]
    finished = rc == 0 and token in stdout_s
    stdout_s = stdout_s.replace(f"\n{token}\n", "")[-stderr_tail:]
    if timed_out or rc == -signal.SIGXCPU:  # SIGXCPU: the CPU-seconds budget ran out before the wall clock
        return ExecResult(False, "timeout", stderr_s, exc, rc, seconds, stdout_s)
    if finished:
        return ExecResult(True, "passed", stderr_s, None, rc, seconds, stdout_s)
    if rc == _RC_FAILED:
        return ExecResult(False, "failed", stderr_s, exc, rc, seconds, stdout_s)
    if rc == 0:
        stderr_s = (stderr_s + "\n[exited before the tests finished]").strip()
    return ExecResult(False, "error", stderr_s, exc, rc, seconds, stdout_s)


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
# dispatch by source


def score_item(item: Any, response: str, timeout: float = 10.0) -> bool:
    """Correctness of `response` for a utility `Item` (anything with `.source` and `.reference`)."""
    src = str(item.source)
    if src == "gsm8k":
        return gsm8k_correct(response, item.reference)
    if src in ("medqa", "medmcqa", "mmlu"):
        return mcq_correct(response, item.reference)
    if src == "pubmedqa":
        return pubmedqa_correct(response, item.reference)
    if src == "humaneval":
        return humaneval_pass(response, item.reference, timeout=timeout).passed
    if src in ("mbpp", "mbpp_full"):
        return mbpp_pass(response, item.reference, timeout=timeout).passed
    raise AlignBeamError(f"no utility scorer for source {src!r} (safety sets are scored by the refusal judge)")


__all__ = [
    "ExecResult",
    "build_humaneval_program",
    "build_mbpp_program",
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
