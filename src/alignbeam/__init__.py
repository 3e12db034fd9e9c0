"""AlignBeam: restore the safety of a fine-tuned LLM at inference time, without touching its weights.

The public API is what this module exports; everything else is private and may change.
"""

from alignbeam.api import AlignBeam, Result
from alignbeam.config import PRESETS, AlignBeamConfig
from alignbeam.engines import Model, Session, Tokenizer, load_model
from alignbeam.errors import AlignBeamError, ConfigError, ContextOverflowError, ModelLoadError
from alignbeam.method.guard import DEFAULT_POLICY, EndpointJudge, GuardJudge
from alignbeam.method.judge import Judge, RubricJudge, SafetyJudge

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`alignbeam.evaluate` loads the evaluation harness only when it is used (a server never needs it)."""
    if name == "evaluate":
        from alignbeam.eval import evaluate

        return evaluate
    raise AttributeError(f"module 'alignbeam' has no attribute {name!r}")


__all__ = [
    "DEFAULT_POLICY",
    "PRESETS",
    "AlignBeam",
    "AlignBeamConfig",
    "AlignBeamError",
    "ConfigError",
    "ContextOverflowError",
    "EndpointJudge",
    "GuardJudge",
    "Judge",
    "Model",
    "ModelLoadError",
    "Result",
    "RubricJudge",
    "SafetyJudge",
    "Session",
    "Tokenizer",
    "__version__",
    "evaluate",
    "load_model",
]
