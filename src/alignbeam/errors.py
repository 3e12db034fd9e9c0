"""User-facing errors.

Every error a user can cause (a wrong name, a missing file, a bad knob) is an `AlignBeamError` whose message
says what went wrong *and what to do*. The CLI and the server print the message instead of a traceback, so
the message is the whole user interface of a failure.
"""

from __future__ import annotations


class AlignBeamError(Exception):
    """An error caused by input or environment that the user can fix; the message says how."""


class ModelLoadError(AlignBeamError):
    """A model could not be resolved or loaded."""


class ConfigError(AlignBeamError, ValueError):
    """A configuration value is out of range or inconsistent with another one."""


class ContextOverflowError(AlignBeamError):
    """A sequence would not fit in the model's context window."""


class EngineBusyError(AlignBeamError):
    """The engine has no room for this work right now (all sequence slots in use): a server answers 503, and the
    same request can succeed later. A request that could never fit is a ConfigError instead."""


class BackendError(AlignBeamError):
    """A remote serving engine (vLLM, SGLang, llama.cpp's server) is down, answered an error or sent something
    unreadable: a server answers 503 naming the backend, and retries later succeed once it is back."""

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class BackendTimeoutError(BackendError):
    """A remote serving engine did not answer within its timeout: a server answers 504 naming the backend."""
