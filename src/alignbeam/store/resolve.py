"""A user's model string -> where its weights are: an embedded name, a GGUF file, a Hugging Face folder or hub id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alignbeam.errors import ModelLoadError
from alignbeam.store.assemble import ProgressFn, assemble
from alignbeam.store.catalog import EMBEDDED


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
