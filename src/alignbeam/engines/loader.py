"""`load_model`: a model string and an engine name in, a loaded `Model` out, once per process.

Loading is the expensive part of everything (seconds to a minute), so loaded models are kept in a
process-wide table keyed by what was asked for: the anchor and the judge given as the same name share one
instance, and a server or an evaluation that builds many AlignBeam objects loads each model once.
"""

from __future__ import annotations

import threading
from typing import Any

from alignbeam.engines.base import Model
from alignbeam.engines.registry import ProgressFn, resolve
from alignbeam.errors import ModelLoadError

ENGINES = ("auto", "llamacpp", "hf")
_loaded: dict[tuple, Model] = {}
_lock = threading.Lock()


def load_model(
    spec: str | Model,
    engine: str = "auto",
    progress: ProgressFn | None = None,
    reuse: bool = True,
    **options: Any,
) -> Model:
    """Load `spec` (embedded name, .gguf path, HF folder or hub id) with `engine` (auto | llamacpp | hf).

    Options go to the engine: llamacpp takes n_ctx, n_ctx_total, n_seq_max, n_threads, n_gpu_layers, n_batch,
    n_ubatch, use_mmap, repack, n_outputs_max (see LlamaCppModel); hf takes
    dtype, device, n_ctx.
    """
    if isinstance(spec, Model):
        return spec
    if engine not in ENGINES:
        raise ModelLoadError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")
    key = (spec, engine, tuple(sorted(options.items())))
    with _lock:
        if reuse and key in _loaded:
            return _loaded[key]
        resolved = resolve(spec, progress)
        chosen = engine if engine != "auto" else ("llamacpp" if resolved.is_gguf else "hf")
        if chosen == "llamacpp":
            if not resolved.is_gguf:
                raise ModelLoadError(
                    f"the llamacpp engine needs a GGUF file, but '{spec}' is a Hugging Face model: use --engine hf"
                )
            from alignbeam.engines.llamacpp import LlamaCppModel

            allowed = {
                "n_ctx",
                "n_ctx_total",
                "n_seq_max",
                "n_threads",
                "n_gpu_layers",
                "n_batch",
                "n_ubatch",
                "use_mmap",
                "repack",
                "n_outputs_max",
            }
            _check_options(options, allowed, chosen)
            model: Model = LlamaCppModel(resolved.path, name=resolved.name, **options)
        else:
            from alignbeam.engines.hf import load_hf

            _check_options(options, {"dtype", "device", "n_ctx"}, chosen)
            model = load_hf(resolved, **options)
        if reuse:
            _loaded[key] = model
        return model


def _check_options(options: dict[str, Any], allowed: set[str], engine: str) -> None:
    bad = sorted(set(options) - allowed)
    if bad:
        raise ModelLoadError(
            f"option(s) {', '.join(bad)} do not apply to the {engine} engine; it takes {sorted(allowed)}"
        )


def clear_cache() -> None:
    """Forget loaded models (tests; freeing memory in long-lived processes)."""
    with _lock:
        for m in _loaded.values():
            m.close()
        _loaded.clear()
