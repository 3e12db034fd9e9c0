"""Build a random-weight twin of a Hugging Face model folder: same architecture, shapes, tokenizer and chat template.

Why: timing the method on hardware the real weights cannot reach (a GPU machine with no network, say). A decoder's
cost per token depends on its shapes, not on its weight values, so a twin decodes at the same speed; with
`ignore_eos` (benchmarks/overhead.py's default) every response has the same length whatever the twin says. Its
answers are noise: use twins for timing only, never for refusal or judge figures.

Usage: python benchmarks/random_twin.py SRC OUT [--dtype bfloat16] [--seed 0]
SRC needs only config.json and the tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja):
the weights are not read.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SMALL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def build(src: Path, out: Path, dtype: str, seed: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if not (src / "config.json").is_file() or not (src / "tokenizer.json").is_file():
        raise SystemExit(f"{src} needs config.json and tokenizer.json (a Hugging Face model folder)")
    torch.manual_seed(seed)
    cfg = AutoConfig.from_pretrained(src)
    model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in SMALL_FILES:  # the real tokenizer and template, not the ones save_pretrained would invent
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: {cfg.model_type}, {n / 1e6:.0f}M parameters, {dtype}, random weights (seed {seed})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    build(a.src, a.out, a.dtype, a.seed)


if __name__ == "__main__":
    main()
