"""Where generated code may run: a bubblewrap sandbox, else an unprivileged user, else (by explicit opt-in only)
the current user. `sandbox()` decides once per interpreter and says why; execution.py runs programs in it.

The bubblewrap sandbox is probed with a real program run (`launch.execute`); how a process is confined lives in
`confine`, below both, so this module and `execution` never import each other."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.confine import BWRAP, Sandbox, SandboxKind, covered, is_root, limits
from alignbeam.eval.launch import execute

__all__ = ["BWRAP", "Sandbox", "SandboxKind", "sandbox", "sandbox_user"]

log = logging.getLogger("alignbeam.eval")
_sandbox_ids_cache: dict[str, tuple[int, int] | None] = {}  # interpreter -> ids, probed once


def _nobody() -> tuple[int, int]:
    try:
        import pwd

        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except (ImportError, KeyError):
        return 65534, 65534


def _sandbox_ids(python: str) -> tuple[int, int] | None:
    """(uid, gid) to run as when we are root and `nobody` can run `python`; probed once per interpreter, else None.

    Why a probe: the interpreter may live under a directory `nobody` cannot read (a pyenv under /root, as on the
    project's machines); dropping privileges would then turn every program into an error. Without bubblewrap
    that leaves no sandbox, which `sandbox` refuses for root unless the caller opts in.
    """
    if python in _sandbox_ids_cache:
        return _sandbox_ids_cache[python]
    result: tuple[int, int] | None = None
    if is_root():
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
                    preexec_fn=limits(1 << 30, 30, 1 << 20, ids),
                )
                result = ids if r.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                result = None
    _sandbox_ids_cache[python] = result
    return result


def _closed_folder(path: str) -> str | None:
    """The first folder on the way to `path` (symlinks resolved) that other users cannot enter, if any."""
    cur = "/"
    for part in Path(os.path.realpath(path)).parts[1:-1]:
        cur = os.path.join(cur, part)
        try:
            mode = os.stat(cur).st_mode
        except OSError:
            return cur
        if not mode & stat.S_IXOTH:
            return f"{cur} (mode {stat.S_IMODE(mode):04o})"
    return None


# --------------------------------------------------------------------------------------------------------------
# bubblewrap


def _which_bwrap(bwrap: str | None) -> str | None:
    if not bwrap:
        return None
    if os.sep in bwrap:
        return bwrap if os.path.isfile(bwrap) and os.access(bwrap, os.X_OK) else None
    return shutil.which(bwrap) or shutil.which(bwrap, path="/usr/bin:/bin")


_roots_cache: dict[str, tuple[str, ...]] = {}


def _interpreter_roots(python: str) -> tuple[str, ...]:
    """The folders the interpreter needs besides /usr: its prefixes (stdlib, site-packages; a venv's and its base
    interpreter's), by the paths it is reached through and their real paths. Asked of the interpreter itself
    (it may not be this one); raises OSError when it cannot say."""
    if python in _roots_cache:
        return _roots_cache[python]
    if python == sys.executable:
        prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    else:
        code = (
            "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"
        )
        try:
            r = subprocess.run(
                [python, "-I", "-c", code],
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
            prefixes = [str(x) for x in json.loads(r.stdout)]
        except (subprocess.SubprocessError, ValueError) as e:
            raise OSError(f"{python} did not report its prefixes ({e})") from e
    paths = {q for p in prefixes for q in (os.path.abspath(p), os.path.realpath(p))}
    exe = os.path.abspath(python)
    if not any(covered(exe, p) for p in paths | {"/usr"}):
        paths.add(os.path.dirname(exe))
    # never the whole file system or /usr (bound anyway); keep only the outermost of nested folders
    paths = {p for p in paths if p != "/" and os.path.isdir(p) and not covered(p, "/usr")}
    roots = tuple(sorted(p for p in paths if not any(p != o and covered(p, o) for o in paths)))
    _roots_cache[python] = roots
    return roots


_PROBE = """\
import collections, functools, heapq, itertools, json, math, os, re, socket, string
with open("probe.txt", "w") as fh:
    fh.write("ok")
print("uid=%d" % os.getuid())
"""

_bwrap_cache: dict[tuple[str, str, bool, bool], Sandbox | str] = {}


def _probe_bwrap(path: str, python: str, drop: bool) -> Sandbox | str:
    """A working bwrap sandbox for `python` (probed once: a real program run through it), or why there is none.

    As root with `drop`, first as the unprivileged user (uid 65534) inside; when that user cannot run the
    interpreter, as uid 0 without capabilities inside the namespaces."""
    key = (path, python, is_root(), drop)
    if key in _bwrap_cache:
        return _bwrap_cache[key]
    try:
        roots = _interpreter_roots(python)
    except OSError as e:
        _bwrap_cache[key] = str(e)
        return str(e)
    result: Sandbox | str = ""
    for ids in [_nobody(), None] if is_root() and drop else [None]:
        sb = Sandbox("bwrap", ids, path, roots)
        r = execute(_PROBE, sb, python, timeout=30.0, memory_mb=1024, file_mb=1, stderr_tail=300)
        want = f"uid={ids[0]}" if ids is not None else "uid="
        if r.passed and want in r.stdout:
            result = sb
            break
        detail = (r.stderr.strip().splitlines() or [r.reason])[-1]
        result = result or f"bubblewrap ({path}) cannot run {python}: {detail}"
    _bwrap_cache[key] = result
    return result


# --------------------------------------------------------------------------------------------------------------
# choosing the sandbox

_warned: set[tuple[Any, ...]] = set()


def _warn_once(key: tuple[Any, ...], message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("alignbeam: %s", message)


def _resolve(python: str, bwrap: str | None, drop: bool) -> Sandbox:
    """The best sandbox available (see the module docstring), without policy: kind "none" when there is none."""
    whys: list[str] = []
    path = _which_bwrap(bwrap)
    if not bwrap:
        whys.append("bubblewrap was disabled")
    elif path is None:
        whys.append(f"bubblewrap ({bwrap!r}) is not installed")
    else:
        got = _probe_bwrap(path, python, drop)
        if isinstance(got, Sandbox):
            return got
        whys.append(got)
    if is_root() and drop:
        ids = _sandbox_ids(python)
        if ids is not None:
            return Sandbox("user", ids, why="; ".join(whys))
        closed = _closed_folder(python)
        whys.append(f"user 'nobody' cannot run {python}" + (f": {closed} is closed to other users" if closed else ""))
    return Sandbox("none", why="; ".join(whys))


def sandbox(
    python: str | None = None,
    *,
    allow_unsandboxed: bool = False,
    bwrap: str | None = BWRAP,
    drop_privileges: bool = True,
) -> Sandbox:
    """Where generated code for `python` will run; probed once per interpreter and bwrap binary.

    Raises `AlignBeamError` when it would run as root without a sandbox and `allow_unsandboxed` is False.
    Anything less than bwrap is stated once (a logged warning). `bwrap`: the binary's name or path (None: do
    not use it); `drop_privileges`: as root, also become an unprivileged user (inside bwrap, or `nobody`).
    """
    python = python or sys.executable
    sb = _resolve(python, bwrap, drop_privileges)
    if sb.kind == "user":
        _warn_once(
            ("user", python, bwrap),
            f"generated code runs as user 'nobody' without namespaces ({sb.why}); it can read world-readable files "
            "and use the network. Install bubblewrap (apt-get install bubblewrap) for a real sandbox.",
        )
    elif sb.kind == "none" and is_root():
        if not allow_unsandboxed:
            raise AlignBeamError(
                "refusing to run generated code as root without a sandbox: "
                + sb.why
                + ". Fix: install bubblewrap (apt-get install bubblewrap), or run alignbeam as a non-root user, "
                "or pass --allow-unsandboxed (allow_unsandboxed=True) to accept the risk"
            )
        _warn_once(
            ("root", python, bwrap),
            f"generated code runs as ROOT without a sandbox, as asked (--allow-unsandboxed): {sb.why}",
        )
    elif sb.kind == "none":
        _warn_once(
            ("none", python, bwrap),
            f"generated code runs as the current user (uid {os.getuid()}) without a sandbox ({sb.why}); it can "
            "read and write what you can. Install bubblewrap (apt-get install bubblewrap) for a real sandbox.",
        )
    return sb


def sandbox_user(python: str | None = None) -> tuple[int, int] | None:
    """The (uid, gid) generated code runs as by default, or None when it runs as the current user's uid."""
    return _resolve(python or sys.executable, BWRAP, True).ids
