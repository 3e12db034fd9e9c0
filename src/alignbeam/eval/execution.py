"""Running model-written programs: a sandboxed subprocess per program, and what became of it (`ExecResult`).

Why a subprocess: model-written code is untrusted and may loop forever, eat memory, print gigabytes, call
`sys.exit(0)` before the tests, or touch files. It never runs in this process. Each program runs in a fresh
`python -I` in its own temporary directory, with a wall-clock timeout, rlimits (address space, CPU seconds,
file size, no core dumps), an empty environment, stdin at EOF, its own process group (killed as a group), and,
when the tester runs as root (CI, containers), as the unprivileged `nobody` user. A pass requires the tests to
finish and the runner to print a per-run token afterwards, so an early `exit(0)` does not count as a pass.
This is containment for accidents, not a security boundary against deliberately hostile code (no seccomp,
no network or filesystem namespaces): code running as the same user could still signal the tester.

The scorers (`alignbeam.eval.scorers`) build the program from a response and the benchmark's tests; this module
only runs it.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alignbeam.errors import AlignBeamError

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


__all__ = ["ExecResult", "Reason", "run_program", "sandbox_user"]
