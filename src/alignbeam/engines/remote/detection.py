"""Connecting to a served model: which protocol the server speaks, what it calls the model, how long its context
is (from what the server answers), and the tokenizer to load locally."""

from __future__ import annotations

from typing import Any

import httpx

from alignbeam.engines import extras
from alignbeam.engines.base import Tokenizer
from alignbeam.engines.remote.model import RemoteModel
from alignbeam.engines.remote.protocols import PROTOCOLS, Protocol
from alignbeam.engines.remote.spec import RemoteSpec
from alignbeam.engines.remote.wire import make_client
from alignbeam.errors import ModelLoadError
from alignbeam.store import resolve


class _Unreachable(Exception):
    """The server did not answer while its protocol was named: loading goes on without what it would report."""


def _detect(client: httpx.Client, spec: RemoteSpec) -> tuple[Protocol, str, int | None]:
    """(protocol, served model name, context size) from what the server answers."""

    def get(path: str) -> dict | None:
        try:
            r = client.get(path, timeout=min(spec.timeout, 10.0))
        except httpx.HTTPError as e:
            if spec.protocol is not None:
                raise _Unreachable from e
            raise ModelLoadError(
                f"the server at {spec.base_url} cannot be reached ({type(e).__name__}): start it first, or name its "
                "protocol (?protocol=llama-server|vllm|sglang) to connect later"
            ) from e
        if r.status_code != 200:
            return None
        try:
            data = r.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    name = spec.protocol
    props = get("/props") if name in (None, "llama-server") else None
    if props is not None and "default_generation_settings" in props:
        n_ctx = props["default_generation_settings"].get("n_ctx")
        return PROTOCOLS["llama-server"](), spec.served or str(props.get("model_alias") or ""), n_ctx
    if name in (None, "sglang"):
        info = get("/get_model_info")
        if info is not None and "model_path" in info:
            return PROTOCOLS["sglang"](), spec.served or str(info["model_path"]), None
    if name in (None, "vllm"):
        models = get("/v1/models")
        if models is not None and models.get("data"):
            served = spec.served or str(models["data"][0]["id"])
            entry = next((m for m in models["data"] if m.get("id") == served), models["data"][0])
            return PROTOCOLS["vllm"](), served, entry.get("max_model_len")
    raise ModelLoadError(
        f"the server at {spec.base_url} does not look like llama-server (/props), SGLang (/get_model_info) or an "
        "OpenAI-compatible vLLM (/v1/models): name its protocol with ?protocol=..."
    )


def load_remote(spec: str, **options: Any) -> RemoteModel:
    """Connect to the model at `spec` (a URL, see the module docstring) and load its tokenizer locally."""
    parsed = RemoteSpec.parse(spec, **options)
    client = make_client(parsed)
    try:
        protocol, served, n_ctx = _detect(client, parsed)
    except _Unreachable:  # the protocol is named: connect when the backend is up (/health says down until then)
        assert parsed.protocol is not None
        protocol, served, n_ctx = PROTOCOLS[parsed.protocol](), parsed.served, None
    finally:
        client.close()
    source = parsed.tokenizer or served
    if not source:
        raise ModelLoadError(
            f"the remote engine needs the model's tokenizer locally: write {spec}#served-name@tokenizer (an embedded "
            "name, a .gguf file, or a Hugging Face folder or id)"
        )
    return RemoteModel(parsed, load_tokenizer(source), protocol, served, parsed.n_ctx or n_ctx or 4096)


def load_tokenizer(source: str) -> Tokenizer:
    """The tokenizer and chat template of `source` (an embedded name, .gguf file, HF folder or id), no weights.

    With llama-cpp-python (GGUF) or transformers (Hugging Face) installed, they read it: the same code as the
    in-process engines. The gateway install has neither, and the `tokenizers` package reads the same files to the
    same ids (engines/gguf_tokenizer.py, engines/hf_files.py; tests/unit/test_slim_tokenizers.py compares them)."""
    try:
        resolved = resolve(source)
    except ModelLoadError as e:
        raise ModelLoadError(
            f"the remote engine needs the model's tokenizer locally, and '{source}' could not be found ({e}); "
            "name it after '@' in the model URL: http://host:port#served-name@tokenizer"
        ) from e
    if resolved.is_gguf:
        if extras.has("llamacpp"):
            from alignbeam.engines.llamacpp_tokenizer import load_tokenizer as gguf_tokenizer
        else:
            from alignbeam.engines.gguf_tokenizer import load_tokenizer as gguf_tokenizer
        return gguf_tokenizer(resolved.path)
    if extras.has("hf"):
        from alignbeam.engines.hf import load_hf_tokenizer

        return load_hf_tokenizer(resolved)
    from alignbeam.engines.hf_files import load_tokenizer as files_tokenizer

    return files_tokenizer(resolved)
