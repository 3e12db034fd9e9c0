"""Optional parts of the install: which `pip install 'alignbeam[...]'` brings what a call needs.

`pip install alignbeam` is the gateway (remote engines, server, CLI, calibration, evaluation) and holds no torch,
transformers, llama-cpp-python or matplotlib. What needs one of them checks for it first, so a missing extra is
one line naming the command that fixes it (the CLI and the server print AlignBeamError messages as they are),
never an ImportError traceback from deep inside a load.
"""

from __future__ import annotations

import importlib.util

from alignbeam.errors import ModelLoadError

#: extra -> the modules it installs (the ones alignbeam imports)
EXTRAS: dict[str, tuple[str, ...]] = {
    "llamacpp": ("llama_cpp",),
    "hf": ("torch", "transformers"),
    "plots": ("matplotlib",),
}


class MissingExtraError(ModelLoadError):
    """A call needs an optional dependency that is not installed; the message names the pip install."""


def has(extra: str) -> bool:
    """Whether every module of `extra` is importable (without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in EXTRAS[extra])


def require(extra: str, purpose: str) -> None:
    """Raise a one-line MissingExtraError unless `extra` is installed; `purpose` says what needed it."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing)}, which the gateway install leaves out: "
            f"pip install 'alignbeam[{extra}]'"
        )
