"""The cache under damage and bad settings: corrupted weights, a truncated bridge table, unusable ALIGNBEAM_CACHE.

Real files throughout. The read-only cache is a real read-only bind mount, made in a private mount namespace
(`unshare --mount --map-root-user`) by a child process: tests run as root here, and root writes through chmod 0555,
so a chmod'ed directory would prove nothing. The mount disappears with the child; where `unshare` or mounting is
not allowed the test skips. The other bad caches (ALIGNBEAM_CACHE naming a file, or a path below a file) fail with
real OS errors in-process.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import flip_bytes
from typer.testing import CliRunner

from alignbeam import store
from alignbeam.cli import app
from alignbeam.engines.base import Tokenizer
from alignbeam.errors import AlignBeamError, ModelLoadError
from alignbeam.method import bridge as bridge_mod
from alignbeam.method.bridge import BridgeTable
from alignbeam.paths import cache_dir

SMOL = store.EMBEDDED["smollm2-135m"]
REPO = Path(__file__).resolve().parents[2]


class ToyTokenizer(Tokenizer):
    """Greedy longest match over a small vocabulary; id 0 is the end-of-turn token."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = ["", *pieces]
        self.vocab_size = len(self.pieces)
        self.eog_ids = frozenset({0})
        self.eot_id = 0
        self.bos_id = None
        self.add_bos = False

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            best = max(
                (j for j, p in enumerate(self.pieces) if p and text.startswith(p, i)), key=lambda j: len(self.pieces[j])
            )
            ids.append(best)
            i += len(self.pieces[best])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.pieces[i] for i in ids)

    def token_texts(self) -> list[str]:
        return list(self.pieces)

    def special_ids(self) -> frozenset[int]:
        return frozenset({0})

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return "".join(m["content"] for m in messages)


def _pair() -> tuple[ToyTokenizer, ToyTokenizer]:
    return ToyTokenizer(["a", "b", "c", "ab", "abc", " "]), ToyTokenizer(["a", "b", "c", "bc", " "])


def _bridge_file() -> Path:
    anchor, draft = _pair()
    return cache_dir() / "bridge" / f"{anchor.fingerprint()}-{draft.fingerprint()}-v1.npz"


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bridge_mod, "_bridge_memory", {})
    monkeypatch.setattr(bridge_mod, "_bridge_warned", set())
    store.forget_verified()
    yield
    store.forget_verified()


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# -- corrupted weights (the real smollm2-135m, copied into a temporary cache) -----------------------------------


@pytest.fixture
def smol_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = store.part_path(SMOL.parts[0])
    if src is None:
        pytest.skip(f"needs the installed smollm2-135m package ({SMOL.pip_hint})")
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(tmp_path / "cache"))
    target = SMOL.cache_path()
    target.parent.mkdir(parents=True)
    shutil.copy2(src, target)  # keeps the package file's (old) mtime: its record is trusted from the first hash
    return target


def test_flipped_bytes_in_real_weights_are_repaired(smol_cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert store.quick_state(SMOL) == "unverified"
    assert store.resolve("smollm2-135m").path == str(smol_cache)  # first load: full hash, recorded
    assert store.quick_state(SMOL) == "ok"
    flip_bytes(smol_cache, 40_000_000, 64 << 10)  # 64 KiB inside the weights
    assert store.quick_state(SMOL) == "modified"
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "damaged" in result.output
    with caplog.at_level(logging.WARNING, logger="alignbeam.registry"):
        assert store.resolve("smollm2-135m").path == str(smol_cache)
    assert "damaged" in caplog.text and "re-assembling it from the installed packages" in caplog.text
    assert store.file_sha256(smol_cache) == SMOL.sha256
    assert store.quick_state(SMOL) == "ok"


def test_flipped_bytes_without_parts_give_a_clear_error(smol_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same real file, registered without installed parts: it cannot be repaired, so it is refused."""
    orphan = store.EmbeddedModel(**{**SMOL.__dict__, "parts": (store.Part("no_such_pkg_xyz", "x.bin", "no-such-pkg"),)})
    monkeypatch.setitem(store.EMBEDDED, "smollm2-135m", orphan)
    flip_bytes(smol_cache, 60_000_000, 64 << 10)
    with pytest.raises(ModelLoadError) as e:
        store.resolve("smollm2-135m")
    msg = _one_line(e.value)
    assert "damaged" in msg and "alignbeam models pull --force smollm2-135m" in msg and SMOL.pip_hint in msg


def test_models_verify_reports_ok_damaged_missing(smol_cache: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["models", "verify", "smollm2-135m", "gemma3-270m"])
    assert result.exit_code == 0, result.output
    assert "smollm2-135m: ok" in result.output and "gemma3-270m: missing" in result.output
    flip_bytes(smol_cache, 1_000_000, 16)
    # restore the mtime: only the full re-hash of `verify` can see this, the cheap check cannot
    st = smol_cache.stat()
    os.utime(smol_cache, ns=(st.st_atime_ns, store.load_record(SMOL, st)["mtime_ns"]))
    result = runner.invoke(app, ["models", "verify", "smollm2-135m"])
    assert result.exit_code == 1
    assert "smollm2-135m: damaged" in result.output and "pull --force smollm2-135m" in result.output
    assert store.quick_state(SMOL) == "damaged"  # recorded: `list` and the next load know it
    result = runner.invoke(app, ["models", "verify", "no-such-model"])
    assert result.exit_code == 2


# -- the bridge table cache ---------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same(a: BridgeTable, b: BridgeTable) -> bool:
    return np.array_equal(a.exact, b.exact) and np.array_equal(a.first, b.first)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-arrays"])
def test_damaged_bridge_cache_file_is_rebuilt_and_rewritten(cache: Path, damage: str) -> None:
    anchor, draft = _pair()
    fresh = BridgeTable.load_or_build(anchor, draft)
    path = _bridge_file()
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an npz at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, exact=np.zeros(3, np.int32))
    again = BridgeTable.load_or_build(anchor, draft)
    assert _same(again, fresh)
    with np.load(path) as z:  # rewritten: a valid table again
        assert np.array_equal(z["exact"], fresh.exact)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


# -- ALIGNBEAM_CACHE that cannot be used --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_cache_that_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    root = blocker if where == "file" else blocker / "sub" / "cache"
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(root))
    anchor, draft = _pair()
    # bridge tables: built, kept in memory, one warning for the whole run
    with caplog.at_level(logging.WARNING, logger="alignbeam.bridge"):
        t1 = BridgeTable.load_or_build(anchor, draft)
        t2 = BridgeTable.load_or_build(anchor, draft)
        BridgeTable.load_or_build(draft, anchor)
    assert t2 is t1
    warnings = [r.getMessage() for r in caplog.records if r.name == "alignbeam.bridge"]
    assert len(warnings) == 1 and f"{blocker} is a file, not a directory" in warnings[0]
    # models: nothing is there and nothing can be written: one line that says what to do
    with pytest.raises(AlignBeamError) as e:
        store.assemble(SMOL)
    msg = _one_line(e.value)
    assert f"ALIGNBEAM_CACHE={root}" in msg and "is a file, not a directory" in msg and "writable directory" in msg
    # the CLI prints it as a line, no traceback
    result = CliRunner().invoke(app, ["models", "pull", "smollm2-135m"], env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "is a file, not a directory" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OSError)
    assert CliRunner().invoke(app, ["models", "list"]).exit_code == 0
    assert CliRunner().invoke(app, ["models", "verify"]).exit_code == 0  # all missing, none damaged


def test_cache_with_missing_parents_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "no" / "such" / "parents"
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(root))
    with caplog.at_level(logging.WARNING):
        BridgeTable.load_or_build(*_pair())
    assert _bridge_file().is_file() and not caplog.records  # it just works, like mkdir -p


def test_bridge_without_disk_never_touches_the_cache(cache: Path) -> None:
    cache.write_text("a file")  # use_disk=False never touches the cache at all
    BridgeTable.load_or_build(*_pair(), use_disk=False)


# -- a read-only cache that already holds the models --------------------------------------------------------------

_RO_SCRIPT = """
from collections.abc import Sequence
from alignbeam import store
from alignbeam.engines.base import Tokenizer
from alignbeam.method.bridge import BridgeTable
from alignbeam.errors import AlignBeamError
{toy}
{pair}
r = store.resolve("smollm2-135m")  # verified (record cannot be written: kept in memory)
assert store.quick_state(store.EMBEDDED["smollm2-135m"]) == "ok"
a, d = _pair()
t = BridgeTable.load_or_build(a, d)
assert BridgeTable.load_or_build(a, d) is t
try:
    store.assemble(store.EMBEDDED["gemma3-270m"])
except AlignBeamError as e:
    print("ERROR:", e)
print("RESOLVED:", r.path)
"""


@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux", reason="needs util-linux unshare")
def test_read_only_cache_that_holds_the_models_still_works(smol_cache: Path) -> None:
    cache = smol_cache.parent.parent
    script = _RO_SCRIPT.format(toy=inspect.getsource(ToyTokenizer), pair=inspect.getsource(_pair))
    shell = f'mount --bind "{cache}" "{cache}" && mount -o remount,bind,ro "{cache}" && exec "$0" -c "$1"'
    env = {**os.environ, "ALIGNBEAM_CACHE": str(cache), "PYTHONPATH": str(REPO / "src")}
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", shell, sys.executable, "open(__import__('os').devnull)"],
        capture_output=True,
        env=env,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.decode().strip()}")
    out = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", shell, sys.executable, textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"RESOLVED: {smol_cache}" in out.stdout
    err = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "read-only file system" in err[0] and "kept in memory" in err[0], out.stderr
    error = next(line for line in out.stdout.splitlines() if line.startswith("ERROR:"))
    assert "read-only file system" in error and "writable directory" in error
    # nothing was written, and the mount is gone with the child
    assert sorted(p.name for p in cache.rglob("*")) == [SMOL.filename, "models"]
