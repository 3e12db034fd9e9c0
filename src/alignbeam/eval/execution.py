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
only runs it. Beneath it, each module imports only those below it: `sandbox` chooses the sandbox (probing
bubblewrap with a real program), `launch` runs one program in a given sandbox and reads its `ExecResult`, and
`confine` holds the mechanics (rlimits, bubblewrap's command line, the sandbox's /etc).
"""

from __future__ import annotations

import os
import sys

from alignbeam.errors import AlignBeamError
from alignbeam.eval.confine import BWRAP, Sandbox, SandboxKind
from alignbeam.eval.launch import ExecResult, Reason, execute
from alignbeam.eval.sandbox import sandbox, sandbox_user


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
    return execute(program, sb, python, timeout, memory_mb, file_mb, stderr_tail)


__all__ = ["BWRAP", "ExecResult", "Reason", "Sandbox", "SandboxKind", "run_program", "sandbox", "sandbox_user"]
