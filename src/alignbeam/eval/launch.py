"""Running one program in a given sandbox (`execute`) and reading what became of it (`ExecResult`).

`execution.run_program` picks the sandbox and calls this; `sandbox` calls it too, to probe bubblewrap with a real
program. Why each limit and each check: the module docstring of `execution`.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alignbeam.eval.confine import SANDBOX_DIR, Sandbox, SandboxKind, bwrap_argv, limits, write_etc

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
    sandbox: SandboxKind | Literal[""] = ""  # where it ran ("" when it did not run)


_EXC_MARK = "__ALIGNBEAM_EXCEPTION__"
_RC_FAILED, _RC_ERROR, _RC_SETUP = 3, 4, 5

# The runner is written next to the program. It compiles and execs the program under a __name__ that is not
# "__main__" (so `if __name__ == "__main__":` demo blocks, which often read stdin, do not run), reports the
# exception type on stderr, and prints the run's token only after everything ran. os._exit skips atexit
# handlers and lingering threads of the candidate.
_RUNNER = f"""\
import os
_DROP = __DROP__
if _DROP is not None and os.getuid() == 0:  # inside bwrap, as root: become the unprivileged user first
    os.setgroups([])
    os.setgid(_DROP[1])
    os.setuid(_DROP[0])
    if 0 in os.getresuid() or 0 in os.getresgid():
        os.write(2, b"alignbeam sandbox: could not drop root privileges\\n")
        os._exit({_RC_SETUP})
import sys, traceback
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


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """`proc.wait(timeout)`, but woken the moment the process exits (a pidfd, Linux >= 5.3). Popen.wait with a
    timeout polls with doubling sleeps, which adds up to ~50% to a 50 ms program; the fallback is that."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0.0, timeout) * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _tail(fh: Any, limit: int) -> str:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - limit))
    return fh.read().decode("utf-8", "replace")


def execute(
    program: str, sb: Sandbox, python: str, timeout: float, memory_mb: int, file_mb: int, stderr_tail: int
) -> ExecResult:
    """Run `program` with `python` in `sb` (already chosen): its own temporary folder, rlimits, a wall-clock
    `timeout`, and the tails of what it printed."""
    token = secrets.token_hex(16)
    in_bwrap = sb.kind == "bwrap"
    with (
        tempfile.TemporaryDirectory(prefix="alignbeam-exec-", ignore_cleanup_errors=True) as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        d, cmd, env = _prepare(program, sb, python, tmp, token, file_mb)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=d,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            start_new_session=True,  # its own process group, so children it spawns die with it
            preexec_fn=limits(
                memory_mb << 20,
                max(1, int(timeout + 0.999)) + 1,
                file_mb << 20,
                None if in_bwrap else sb.ids,  # in bwrap the runner drops privileges, after the mounts
            ),
        )
        rc, timed_out = _finish(proc, timeout)
        seconds = time.monotonic() - t0
        stdout_s, stderr_s = _tail(out, 4096), _tail(err, max(stderr_tail, 4096))
    if in_bwrap and rc > 128:  # bwrap reports a program killed by signal N as exit status 128 + N
        rc = -(rc - 128)
    return _outcome(rc, timed_out, token, stdout_s, stderr_s, stderr_tail, seconds, sb.kind)


def _prepare(
    program: str, sb: Sandbox, python: str, tmp: str, token: str, file_mb: int
) -> tuple[Path, list[str], dict[str, str]]:
    """The program's folder (program and runner written into it), the command line and the environment."""
    in_bwrap = sb.kind == "bwrap"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    d = Path(tmp) / "work" if in_bwrap else Path(tmp)  # bwrap: tmp also holds the sandbox's /etc files
    d.mkdir(exist_ok=True)
    (d / "program.py").write_text(program, encoding="utf-8")
    runner = _RUNNER.replace("__TOKEN__", token).replace("__DROP__", repr(sb.ids if in_bwrap else None))
    (d / "runner.py").write_text(runner, encoding="utf-8")
    if sb.ids is not None:
        os.chown(d, *sb.ids)
    cmd = [python, "-I", "-B", "runner.py"]
    if in_bwrap:
        write_etc(Path(tmp), sb.ids)
        cmd = [*bwrap_argv(sb, Path(tmp), d, max(file_mb, 1) << 20), "--", *cmd]
        env.update(HOME=SANDBOX_DIR, TMPDIR="/tmp")
    else:
        env.update(HOME=tmp, TMPDIR=tmp)
    return d, cmd, env


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, bool]:
    """(exit status, timed out): waits up to `timeout`, then kills the program's whole process group."""
    timed_out = False
    try:
        rc = _wait(proc, timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)  # bwrap and the sandbox's init: the kernel then kills the whole pid namespace
        rc = proc.wait()
    finally:
        _kill_group(proc.pid)
    return rc, timed_out


def _outcome(
    rc: int,
    timed_out: bool,
    token: str,
    stdout_s: str,
    stderr_s: str,
    stderr_tail: int,
    seconds: float,
    kind: SandboxKind,
) -> ExecResult:
    """What became of the program, from its exit status and output (a pass needs the run's token printed)."""
    exc = None
    m = re.findall(rf"{_EXC_MARK} (\w+)", stderr_s)
    if m:
        exc = m[-1]
        stderr_s = stderr_s.replace(f"\n{_EXC_MARK} {exc}\n", "\n")
    stderr_s = stderr_s[-stderr_tail:]
    finished = rc == 0 and token in stdout_s
    stdout_s = stdout_s.replace(f"\n{token}\n", "")[-stderr_tail:]
    if timed_out or rc == -signal.SIGXCPU:  # SIGXCPU: the CPU-seconds budget ran out before the wall clock
        return ExecResult(False, "timeout", stderr_s, exc, rc, seconds, stdout_s, kind)
    if finished:
        return ExecResult(True, "passed", stderr_s, None, rc, seconds, stdout_s, kind)
    if rc == _RC_FAILED:
        return ExecResult(False, "failed", stderr_s, exc, rc, seconds, stdout_s, kind)
    if rc == 0:
        stderr_s = (stderr_s + "\n[exited before the tests finished]").strip()
    return ExecResult(False, "error", stderr_s, exc, rc, seconds, stdout_s, kind)
