"""The sandbox for generated code, tested with real programs run through the real sandbox (no mocks).

What a hostile answer tries (read secrets, write outside its folder, open sockets) must fail; an honest answer
must still pass or fail on its own tests; and as root, task scoring must never run code unsandboxed by
default. Each case runs one fresh interpreter (~50 ms in bubblewrap).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from alignbeam.errors import AlignBeamError
from alignbeam.eval.execution import sandbox
from alignbeam.eval.scorers import humaneval_pass, mbpp_pass, run_program

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SRC = Path(__file__).resolve().parents[2] / "src" / "alignbeam"


def _bwrap_reason() -> str | None:
    """Why the bubblewrap tests cannot run here, or None when they can."""
    if shutil.which("bwrap") is None and shutil.which("bwrap", path="/usr/bin:/bin") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    sb = sandbox(allow_unsandboxed=True)
    return None if sb.kind == "bwrap" else f"bubblewrap cannot create its namespaces here: {sb.why}"


BWRAP_SKIP = _bwrap_reason()
needs_bwrap = pytest.mark.skipif(BWRAP_SKIP is not None, reason=BWRAP_SKIP or "")
needs_root = pytest.mark.skipif(not ROOT, reason="checks what happens when the tester runs as root")

ADD = {  # a HumanEval-style task
    "task_id": "Test/0",
    "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}


def run(body: str, **kw: object) -> object:
    return run_program(textwrap.dedent(body), timeout=10.0, **kw)  # type: ignore[arg-type]


@needs_bwrap
def test_bwrap_is_the_default_and_leaves_no_privileges() -> None:
    r = run(
        """
        import os
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status["CapEff"]
        assert status["NoNewPrivs"].strip() == "1"
        if os.path.exists("/proc/1/cmdline"):
            assert "bwrap" in open("/proc/1/cmdline").read()  # pid 1 is the sandbox's init: own pid namespace
        print(os.getuid())
        """
    )
    assert r.passed and r.sandbox == "bwrap", r
    if ROOT and sandbox().ids is not None:
        assert r.stdout.split()[-1] == "65534"  # root drops to the unprivileged user inside the sandbox


@needs_bwrap
def test_cannot_read_secrets_or_files_outside_its_folder() -> None:
    assert Path("/etc/passwd").exists()
    r = run(
        f"""
        import os
        for path in ("/etc/shadow", "/etc/gshadow", "/root/.bashrc", {str(SRC / "errors.py")!r}):
            try:
                open(path).read()
            except OSError:
                continue
            raise AssertionError("read " + path)
        assert not os.path.exists("/etc/shadow")
        users = open("/etc/passwd").read()
        assert "nobody" in users and ":x:" in users and "$" not in users  # a synthetic passwd, no hashes
        """
    )
    assert r.passed, r
    reads_shadow = run("print(open('/etc/shadow').read())\n")
    assert not reads_shadow.passed and reads_shadow.reason == "error", reads_shadow
    assert reads_shadow.exception in ("FileNotFoundError", "PermissionError"), reads_shadow
    assert "root:" not in reads_shadow.stdout


@needs_bwrap
def test_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    outside = tmp_path / "open"
    outside.mkdir()
    outside.chmod(0o777)  # writable to anyone who can see it: the sandbox must not see it at all
    targets = ["/root/alignbeam-escape", "/work/alignbeam-escape", str(SRC / "escape.py"), str(outside / "x")]
    targets += ["/usr/alignbeam-escape", "/etc/alignbeam-escape", sys.executable + "-escape"]
    r = run(
        f"""
        for path in {targets!r}:
            try:
                with open(path, "w") as fh:
                    fh.write("x")
            except OSError:
                continue
            raise AssertionError("wrote " + path)
        """
    )
    assert r.passed, r
    for t in targets:
        assert not Path(t).exists(), t


@needs_bwrap
def test_no_network_not_even_to_the_testers_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        r = run(
            f"""
            import socket
            for addr in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
                try:
                    socket.create_connection(addr, timeout=2).close()
                except OSError:
                    continue
                raise AssertionError("connected to %s" % (addr,))
            """
        )
        assert r.passed, r
        with pytest.raises(TimeoutError):
            server.accept()  # nothing from the sandbox reached the tester's listener
    connects = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n")
    assert not connects.passed and connects.exception == "ConnectionRefusedError", connects


@needs_bwrap
def test_can_write_in_its_own_folder_and_tmp() -> None:
    r = run(
        """
        import os, tempfile
        with open("out.txt", "w") as fh:
            fh.write("hello")
        assert open("out.txt").read() == "hello"
        assert sorted(os.listdir(".")) == ["out.txt", "program.py", "runner.py"]
        with tempfile.NamedTemporaryFile("w") as fh:
            fh.write("scratch")
        os.makedirs("sub/dir")
        print(os.getcwd())
        """
    )
    assert r.passed, r
    assert r.stdout.split()[-1] == "/sandbox"


@needs_bwrap
def test_resource_limits_still_apply_inside() -> None:
    loop = run_program("while True:\n    pass\n", timeout=1.0)
    assert loop.reason == "timeout" and loop.seconds < 5, loop
    big = run_program("x = bytearray(8 * 1024 ** 3)\n", timeout=10.0)
    assert big.reason == "error" and big.exception == "MemoryError", big
    huge = run_program("open('f', 'wb').write(b'x' * (64 << 20))\n", timeout=10.0, file_mb=1)
    assert not huge.passed, huge  # RLIMIT_FSIZE (SIGXFSZ) or the tmpfs size


@needs_bwrap
def test_honest_answers_still_pass_and_fail() -> None:
    ok = humaneval_pass("    return a + b\n", ADD)
    assert ok.passed and ok.reason == "passed" and ok.sandbox == "bwrap", ok
    wrong = humaneval_pass("```python\ndef add(a, b):\n    return a - b\n```", ADD)
    assert not wrong.passed and wrong.reason == "failed" and wrong.exception == "AssertionError", wrong
    uses_stdlib = (
        "```python\nimport collections, heapq, math, re\ndef add(a, b):\n    return int(math.fsum([a, b]))\n```"
    )
    assert humaneval_pass(uses_stdlib, ADD).passed
    mbpp = {"test_list": ["assert square(3) == 9", "assert square(-2) == 4"], "code": "def square(x): return x * x"}
    assert mbpp_pass("def square(x):\n    return x ** 2\n", mbpp).passed
    assert mbpp_pass("def square(x):\n    return 2 * x\n", mbpp).reason == "failed"


# root, and no sandbox ------------------------------------------------------------------------------------------

NOT_ROOT_ANSWER = (
    "```python\nimport os\ndef add(a, b):\n    assert os.getuid() != 0, 'ran as root'\n    return a + b\n```"
)
IS_ROOT_ANSWER = "```python\nimport os\ndef add(a, b):\n    assert os.getuid() == 0\n    return a + b\n```"


def _python_nobody_cannot_run(tmp_path: Path) -> str:
    """The tester's interpreter, reached through a folder only root may enter (like a pyenv under /root)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link = private / "python"
    link.symlink_to(sys.executable)
    return str(link)


@needs_root
def test_task_scoring_does_not_run_as_root_by_default(tmp_path: Path) -> None:
    """Default: a real sandbox, never root. Without bwrap and without a usable unprivileged user: the clear
    error, unless the caller opts in; and then it does run as root."""
    try:
        default = humaneval_pass(NOT_ROOT_ANSWER, ADD)
    except AlignBeamError as e:  # no sandbox on this machine: refusing is the other acceptable default
        assert "--allow-unsandboxed" in str(e)
    else:
        assert default.passed and default.sandbox in ("bwrap", "user"), default

    python = _python_nobody_cannot_run(tmp_path)
    no_bwrap = str(tmp_path / "no" / "bwrap")
    with pytest.raises(AlignBeamError) as err:
        humaneval_pass(IS_ROOT_ANSWER, ADD, python=python, bwrap=no_bwrap)
    msg = str(err.value)
    assert "refusing to run generated code as root" in msg
    assert "not installed" in msg and "nobody" in msg  # what was tried
    assert "apt-get install bubblewrap" in msg and "non-root user" in msg and "--allow-unsandboxed" in msg
    with pytest.raises(AlignBeamError, match="allow-unsandboxed"):
        run_program("print(1)\n", python=python, bwrap=None)

    opted_in = humaneval_pass(IS_ROOT_ANSWER, ADD, python=python, bwrap=no_bwrap, allow_unsandboxed=True)
    assert opted_in.passed and opted_in.sandbox == "none", opted_in  # ran, as root, because it was asked to


@needs_root
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system /usr/bin/python3 nobody can run")
def test_without_bwrap_root_falls_back_to_nobody_when_it_can_run_the_interpreter(tmp_path: Path) -> None:
    r = run_program("import os\nprint(os.getuid())\n", python="/usr/bin/python3", bwrap=str(tmp_path / "no-bwrap"))
    assert r.passed and r.sandbox == "user", r
    assert r.stdout.split()[-1] == "65534"


#: the sandbox's modules, each after those it imports
EVAL_MODULES = ("confine", "launch", "sandbox", "execution")

NON_ROOT = """
import importlib.util, json, logging, sys, types

records = []
handler = type("H", (logging.Handler,), {"emit": lambda self, record: records.append(record)})
logging.getLogger("alignbeam.eval").addHandler(handler())
for name in ("alignbeam", "alignbeam.eval"):  # the package __init__ needs numpy & co; these files need nothing
    pkg = types.ModuleType(name)
    pkg.__path__ = []
    sys.modules[name] = pkg
modules = [("alignbeam.errors", WORK + "/errors.py")]
modules += [(f"alignbeam.eval.{m}", WORK + f"/{m}.py") for m in EVAL_MODULES]
for name, path in modules:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
ex = sys.modules["alignbeam.eval.execution"]
out = {}
for label, bwrap in (("none", "/nonexistent/bwrap"), ("none_again", "/nonexistent/bwrap"), ("bwrap", "bwrap")):
    r = ex.run_program("import os\\nprint(os.getuid())\\n", bwrap=bwrap)
    out[label] = [r.passed, r.sandbox, r.stdout.strip()]
out["warnings"] = [r.getMessage() for r in records]
print(json.dumps(out))
"""


@needs_root
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system /usr/bin/python3 nobody can run")
def test_as_a_non_root_user() -> None:
    """Run the real module as `nobody`: without bwrap it runs as that user and says so once; with bwrap it uses
    bwrap (unprivileged, in a user namespace) when the kernel allows it."""
    with tempfile.TemporaryDirectory(prefix="alignbeam-nobody-") as tmp:  # not tmp_path: nobody cannot enter it
        work = Path(tmp)
        os.chown(work, 65534, 65534)
        _run_as_nobody(work)


def _run_as_nobody(work: Path) -> None:
    for name in ("errors", *EVAL_MODULES):  # copies nobody can read (the checkout may be closed)
        src = SRC / ("eval" if name != "errors" else "") / f"{name}.py"
        shutil.copy(src, work / f"{name}.py")
    script = NON_ROOT.replace("WORK", repr(str(work))).replace("EVAL_MODULES", repr(EVAL_MODULES))

    def as_nobody() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    p = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", script],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=as_nobody,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["none"] == [True, "none", "65534"] and out["none_again"] == out["none"], out
    unsandboxed = [w for w in out["warnings"] if "without a sandbox" in w]
    assert len(unsandboxed) == 1 and "apt-get install bubblewrap" in unsandboxed[0], out["warnings"]
    if BWRAP_SKIP is None:
        assert out["bwrap"][:2] == [True, "bwrap"], out
