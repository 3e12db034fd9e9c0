"""Running model-written programs: a sandboxed subprocess per program, and what became of it (`ExecResult`).

Why a subprocess: model-written code is untrusted and may loop forever, eat memory, print gigabytes, call
`sys.exit(0)` before the tests, or touch files. It never runs in this process. Each program runs in a fresh
`python -I` in its own temporary directory, with a wall-clock timeout, rlimits (address space, CPU seconds,
file size, no core dumps), an empty environment, stdin at EOF and its own process group (killed as a group).
A pass requires the tests to finish and the runner to print a per-run token afterwards, so an early `exit(0)`
does not count as a pass.

Where it runs (`sandbox`), best first:

- "bwrap": bubblewrap. Fresh mount, pid, network, ipc and uts namespaces; only /usr (and the /bin, /lib
  links), the interpreter's prefixes (stdlib, site-packages), a minimal /etc (no shadow, a two-line passwd)
  are visible, read-only; the program's folder is read-write at /sandbox, /tmp is a small private tmpfs; no
  network (an own loopback with nothing listening), no capabilities, no new privileges, its own session, and
  it dies with the tester. As root, the runner then drops to uid/gid 65534 inside the sandbox (bwrap makes the
  interpreter reachable to it even when it lives under /root); if that user cannot read the interpreter it
  stays uid 0 without capabilities, still inside the namespaces.
- "user": no usable bwrap, running as root, and `nobody` can execute the interpreter: as `nobody`, no
  namespaces (it can read world-readable files and use the network).
- "none": the current user. Allowed silently never: for a non-root user with a one-time warning; for root only
  with `allow_unsandboxed=True` (`alignbeam eval --allow-unsandboxed`), otherwise `AlignBeamError` saying how
  to fix it. Why: here the interpreter lives under /root (0700), so `nobody` cannot run it, and the old silent
  fallback ran generated code as root, able to read /etc/shadow, write anywhere and open sockets.

The scorers (`alignbeam.eval.scorers`) build the program from a response and the benchmark's tests; this module
only runs it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alignbeam.errors import AlignBeamError
from alignbeam.eval.sandbox import (
    _SANDBOX_DIR,
    BWRAP,
    Sandbox,
    SandboxKind,
    _bwrap_argv,
    _limits,
    _write_etc,
    sandbox,
    sandbox_user,
)

Reason = Literal["passed", "failed", "timeout", "error", "no_code"]

log = logging.getLogger("alignbeam.eval")


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


def run_program(
    program: str,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    file_mb: int = 16,
    drop_privileges: bool = True,
    stderr_tail: int = 2000,
    python: str | None = None,
    *,
    allow_unsandboxed: bool = False,
    bwrap: str | None = BWRAP,
) -> ExecResult:
    """Run a complete Python program in the sandbox described in the module docstring; never in this process.

    `python`: the interpreter (default: the one running alignbeam). `drop_privileges`: as root, run as an
    unprivileged user when one can execute the interpreter. `bwrap`: the bubblewrap binary (None: do not use
    it). `allow_unsandboxed`: as root with no sandbox available, run anyway instead of raising `AlignBeamError`.
    """
    if os.name != "posix":
        raise AlignBeamError("executing generated code needs a POSIX system (rlimits, process groups)")
    python = python or sys.executable
    sb = sandbox(python, allow_unsandboxed=allow_unsandboxed, bwrap=bwrap, drop_privileges=drop_privileges)
    return _execute(program, sb, python, timeout, memory_mb, file_mb, stderr_tail)


def _execute(
    program: str, sb: Sandbox, python: str, timeout: float, memory_mb: int, file_mb: int, stderr_tail: int
) -> ExecResult:
    token = secrets.token_hex(16)
    in_bwrap = sb.kind == "bwrap"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    with (
        tempfile.TemporaryDirectory(prefix="alignbeam-exec-", ignore_cleanup_errors=True) as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        d = Path(tmp) / "work" if in_bwrap else Path(tmp)  # bwrap: tmp also holds the sandbox's /etc files
        d.mkdir(exist_ok=True)
        (d / "program.py").write_text(program, encoding="utf-8")
        runner = _RUNNER.replace("__TOKEN__", token).replace("__DROP__", repr(sb.ids if in_bwrap else None))
        (d / "runner.py").write_text(runner, encoding="utf-8")
        if sb.ids is not None:
            os.chown(d, *sb.ids)
        cmd = [python, "-I", "-B", "runner.py"]
        if in_bwrap:
            _write_etc(Path(tmp), sb.ids)
            cmd = [*_bwrap_argv(sb, Path(tmp), d, max(file_mb, 1) << 20), "--", *cmd]
            env.update(HOME=_SANDBOX_DIR, TMPDIR="/tmp")
        else:
            env.update(HOME=tmp, TMPDIR=tmp)
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
            preexec_fn=_limits(
                memory_mb << 20,
                max(1, int(timeout + 0.999)) + 1,
                file_mb << 20,
                None if in_bwrap else sb.ids,  # in bwrap the runner drops privileges, after the mounts
            ),
        )
        timed_out = False
        try:
            rc = _wait(proc, timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)  # bwrap and the sandbox's init: the kernel then kills the whole pid namespace
            rc = proc.wait()
        finally:
            _kill_group(proc.pid)
        seconds = time.monotonic() - t0
        stdout_s, stderr_s = _tail(out, 4096), _tail(err, max(stderr_tail, 4096))
    if in_bwrap and rc > 128:  # bwrap reports a program killed by signal N as exit status 128 + N
        rc = -(rc - 128)
    exc = None
    m = re.findall(rf"{_EXC_MARK} (\w+)", stderr_s)
    if m:
        exc = m[-1]
        stderr_s = stderr_s.replace(f"\n{_EXC_MARK} {exc}\n", "\n")
    stderr_s = stderr_s[-stderr_tail:]
    finished = rc == 0 and token in stdout_s
    stdout_s = stdout_s.replace(f"\n{token}\n", "")[-stderr_tail:]
    kind = sb.kind
    if timed_out or rc == -signal.SIGXCPU:  # SIGXCPU: the CPU-seconds budget ran out before the wall clock
        return ExecResult(False, "timeout", stderr_s, exc, rc, seconds, stdout_s, kind)
    if finished:
        return ExecResult(True, "passed", stderr_s, None, rc, seconds, stdout_s, kind)
    if rc == _RC_FAILED:
        return ExecResult(False, "failed", stderr_s, exc, rc, seconds, stdout_s, kind)
    if rc == 0:
        stderr_s = (stderr_s + "\n[exited before the tests finished]").strip()
    return ExecResult(False, "error", stderr_s, exc, rc, seconds, stdout_s, kind)


__all__ = ["BWRAP", "ExecResult", "Reason", "Sandbox", "SandboxKind", "run_program", "sandbox", "sandbox_user"]
