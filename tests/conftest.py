"""Shared fixtures. Integration tests use the real embedded models (installed by scripts/install.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignbeam.engines import registry

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_embedded(name: str) -> None:
    """Integration tests fail (not skip) without the models: CI must never pass by testing nothing."""
    m = registry.EMBEDDED[name]
    if not m.is_ready():
        registry.assemble(m)


@pytest.fixture(scope="session")
def smollm2_tokenizer_folder() -> Path:
    """A real tokenizer (SmolLM2's, converted from its GGUF once) for tests on tiny locally built models."""
    from alignbeam.engines.hf import _converted_folder
    from alignbeam.engines.registry import resolve

    require_embedded("smollm2-135m")
    import torch

    return _converted_folder(resolve("smollm2-135m"), torch.float32)
