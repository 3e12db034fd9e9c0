"""`load_model`: a model string and an engine name in, a loaded `Model` out, once per process.

Loading is the expensive part of everything (seconds to a minute), so loaded models are kept in a
process-wide table keyed by what was asked for: the anchor and the judge given as the same name share one
instance, and a server or an evaluation that builds many AlignBeam objects loads each model once.
"""

from __future__ import annotations

import threading
from typing import Any

from alignbeam.engines import extras
from alignbeam.engines.base import Model
from alignbeam.engines.remote import is_url
from alignbeam.errors import ModelLoadError
from alignbeam.store import ProgressFn, ResolvedModel, resolve

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
    """Load `spec` (embedded name, .gguf path, HF folder or hub id) with `engine` (auto | llamacpp | hf), or
    connect to it when it is a server URL (http://host:port[/v1]#served-name: the remote engine, whatever `engine`
    says, since the server decides how it runs).

    Options go to the engine: llamacpp takes n_ctx, n_ctx_total, n_seq_max, n_threads, n_gpu_layers, n_batch,
    n_ubatch, use_mmap, repack, n_outputs_max (see LlamaCppModel); hf takes dtype, device, n_ctx; remote takes
    protocol, top_logprobs, timeout, retries, n_ctx (also as the URL's query string; see engines/remote/), and
    ignores the in-process options (threads, slots).
    """
    if isinstance(spec, Model):
        return spec
    if is_url(spec):
        return _connect(spec, reuse, options)
    if engine not in ENGINES:
        raise ModelLoadError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")
    key = (spec, engine, tuple(sorted(options.items())))
    with _lock:
        if reuse and key in _loaded:
            return _loaded[key]
        resolved = resolve(spec, progress)
        chosen = engine if engine != "auto" else ("llamacpp" if resolved.is_gguf else "hf")
        model = _load_local(spec, resolved, chosen, options)
        if reuse:
            _loaded[key] = model
        return model


def _connect(spec: str, reuse: bool, options: dict[str, Any]) -> Model:
    """The remote model at the URL `spec`, once per URL and remote options; the in-process options are ignored."""
    from alignbeam.engines.remote import load_remote

    remote_opts = {k: v for k, v in options.items() if k in ("protocol", "top_logprobs", "timeout", "retries")}
    key = (spec, "remote", tuple(sorted(remote_opts.items())))
    with _lock:
        if reuse and key in _loaded:
            return _loaded[key]
        remote = load_remote(spec, **remote_opts)
        if reuse:
            _loaded[key] = remote
        return remote


#: the options each in-process engine takes
_LLAMACPP_OPTIONS = {
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
_HF_OPTIONS = {"dtype", "device", "n_ctx"}


def _load_local(spec: str, resolved: ResolvedModel, chosen: str, options: dict[str, Any]) -> Model:
    """Load `resolved` in this process with the `chosen` engine (llamacpp or hf)."""
    if chosen == "llamacpp":
        if not resolved.is_gguf:
            raise ModelLoadError(
                f"the llamacpp engine needs a GGUF file, but '{spec}' is a Hugging Face model: use --engine hf"
            )
        extras.require("llamacpp", f"loading {spec} in this process (the llamacpp engine)")
        from alignbeam.engines.llamacpp import LlamaCppModel

        _check_options(options, _LLAMACPP_OPTIONS, chosen)
        return LlamaCppModel(resolved.path, name=resolved.name, **options)
    extras.require("hf", f"loading {spec} in this process (the hf engine)")
    from alignbeam.engines.hf import load_hf

    _check_options(options, _HF_OPTIONS, chosen)
    return load_hf(resolved, **options)


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
