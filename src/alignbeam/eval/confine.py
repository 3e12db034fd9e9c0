"""How one process is confined: rlimits (and, as root, a drop to an unprivileged user) applied before it starts,
bubblewrap's command line, and the minimal /etc it sees. The mechanics only; `sandbox` decides which confinement
is available, `launch` runs a program under it, and `execution` documents the whole (its module docstring).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SandboxKind = Literal["bwrap", "user", "none"]


def limits(memory_bytes: int, cpu_seconds: int, file_bytes: int, ids: tuple[int, int] | None) -> Any:
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


def is_root() -> bool:
    """Whether this process runs as root (then a sandbox must also drop privileges)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


#: the bubblewrap binary `run_program` looks for by default (a name on PATH, or a path)
BWRAP = "bwrap"
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # merged-/usr links (or folders) at the root
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")  # harmless, and what programs read
SANDBOX_DIR = "/sandbox"  # where the program's folder appears inside


@dataclass(frozen=True)
class Sandbox:
    """Where generated code runs (see the module docstring). `ids`: the (uid, gid) the program runs as, None =
    the current user's (inside bwrap as root: uid 0 without capabilities); `bwrap`: the binary (kind "bwrap");
    `roots`: the interpreter's folders it sees read-only; `why`: what was not usable and why."""

    kind: SandboxKind
    ids: tuple[int, int] | None = None
    bwrap: str | None = None
    roots: tuple[str, ...] = ()
    why: str = ""


def covered(path: str, by: str) -> bool:
    """Whether `path` is the folder `by` or inside it."""
    return path == by or path.startswith(by.rstrip("/") + "/")


def bwrap_argv(sb: Sandbox, private: Path, work: Path, tmp_bytes: int) -> list[str]:
    """The bwrap command line up to `--`: namespaces, what is visible, and the capabilities (see the module
    docstring). Folders bwrap creates on the way to a bind are 0700 root by default, which would lock the
    unprivileged user out of an interpreter under /root; so they are made 0755 first."""
    assert sb.bwrap is not None
    a = [sb.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    a += ["--unshare-uts", "--hostname", "sandbox", "--unshare-cgroup-try"]
    if is_root():
        a += ["--cap-drop", "ALL"]
        if sb.ids is not None:  # for the runner's setuid/setgid to sb.ids; cleared by that very call
            a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    a += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]
    a += ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LINKS:
        top = "/" + name
        if os.path.islink(top):
            a += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            a += ["--ro-bind", top, top]
    a += ["--perms", "0755", "--dir", "/etc"]
    for f in _ETC_FILES:
        a += ["--ro-bind-try", f, f]
    for name in ("passwd", "group", "hosts"):
        a += ["--ro-bind", str(private / name), f"/etc/{name}"]
    made: set[str] = {"/", "/etc", "/tmp", "/dev", "/proc", "/usr"}
    for root in sb.roots:
        for parent in reversed(Path(root).parents):
            p = str(parent)
            if p not in made and not covered(p, "/usr"):
                a += ["--perms", "0755", "--dir", p]
                made.add(p)
        a += ["--ro-bind", root, root]
        made.add(root)
    a += ["--bind", str(work), SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    return a


def write_etc(private: Path, ids: tuple[int, int] | None) -> None:
    """A minimal /etc: users without password hashes, no shadow, localhost only."""
    users = {0: ("root", 0, "/root"), 65534: ("nobody", 65534, SANDBOX_DIR)}
    me = ids or (os.getuid(), os.getgid())
    users.setdefault(me[0], ("sandbox", me[1], SANDBOX_DIR))
    groups = {0: "root", 65534: "nogroup"}
    groups.setdefault(me[1], "sandbox")
    passwd = "".join(f"{n}:x:{u}:{g}:{n}:{h}:/usr/sbin/nologin\n" for u, (n, g, h) in sorted(users.items()))
    (private / "passwd").write_text(passwd)
    (private / "group").write_text("".join(f"{n}:x:{g}:\n" for g, n in sorted(groups.items())))
    (private / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
