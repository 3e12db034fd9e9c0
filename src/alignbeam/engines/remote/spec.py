"""A remote model's URL: `http://host:port[/v1]#served-name[@tokenizer]?options`, parsed and checked.

The URL is the whole of a remote model's configuration (the package docstring lists the options), so a model
string means the same thing on the command line, in the API and in a server's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alignbeam.engines.remote.protocols import PROTOCOLS
from alignbeam.errors import ModelLoadError

#: the options a model URL takes in its query string, and their types
_OPTIONS = {
    "protocol": str,
    "top_logprobs": int,
    "timeout": float,
    "retries": int,
    "n_ctx": int,
    "named": int,
    "connections": int,
}


def is_url(spec: str) -> bool:
    """Whether a model string names a server (the remote engine) rather than weights to load here."""
    return spec.startswith(("http://", "https://"))


@dataclass(frozen=True)
class RemoteSpec:
    """A parsed model URL."""

    base_url: str  # scheme://host:port[/prefix], without a trailing /v1
    served: str  # the model name at the server ("" = the server's only model)
    tokenizer: str  # where the tokenizer is ("" = the served name)
    protocol: str | None = None
    top_logprobs: int = 64
    timeout: float = 60.0
    retries: int = 3
    n_ctx: int | None = None
    named: int = 1  # ask for the draft's probability of translated anchor tokens by id, where the server can
    connections: int = 64  # requests in flight at this server at once (the per-backend concurrency limit)

    @classmethod
    def parse(cls, spec: str, **overrides: Any) -> RemoteSpec:
        parts = urlsplit(spec)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelLoadError(f"'{spec}' is not a server URL: write http://host:port[/v1]#served-name")
        served, _, tokenizer = parts.fragment.partition("@")
        opts: dict[str, Any] = {}
        for key, value in [*parse_qsl(parts.query), *overrides.items()]:
            if key not in _OPTIONS:
                raise ModelLoadError(f"unknown remote model option '{key}' in {spec}: valid are {', '.join(_OPTIONS)}")
            try:
                opts[key] = _OPTIONS[key](value)
            except (TypeError, ValueError):
                kind = _OPTIONS[key].__name__
                raise ModelLoadError(f"remote model option {key}={value!r} in {spec} is not a {kind}") from None
        if opts.get("protocol") is not None and opts["protocol"] not in PROTOCOLS:
            known = ", ".join(PROTOCOLS)
            raise ModelLoadError(f"unknown protocol '{opts['protocol']}' in {spec}: choose one of {known}")
        if not 1 <= opts.get("top_logprobs", 64) <= 1000:
            raise ModelLoadError(f"top_logprobs in {spec} must be between 1 and 1000")
        if opts.get("timeout", 60.0) <= 0 or opts.get("retries", 3) < 0:
            raise ModelLoadError(f"timeout must be > 0 and retries >= 0 in {spec}")
        if opts.get("connections", 64) < 1:
            raise ModelLoadError(f"connections must be at least 1 in {spec}")
        path = parts.path.rstrip("/").removesuffix("/v1")
        base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return cls(base, served, tokenizer, **opts)
