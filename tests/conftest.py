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


def build_tiny_llama(tokenizer_folder: Path, n_ctx: int):  # type: ignore[no-untyped-def]
    """A tiny random Llama (2 layers, width 32) with SmolLM2's real tokenizer and chat template (logic tests)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from alignbeam.engines.hf import HFModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_folder)
    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max(256, n_ctx),
    )
    return HFModel(LlamaForCausalLM(cfg), tok, "tiny", "local", n_ctx=n_ctx)


@pytest.fixture(scope="session")
def tiny_llama(smollm2_tokenizer_folder: Path):  # type: ignore[no-untyped-def]
    return build_tiny_llama(smollm2_tokenizer_folder, 1024)
