"""AlignBeam: restore the safety of a fine-tuned LLM at inference time, without touching its weights.

The public API is what this module exports; everything else is private and may change.
"""

from alignbeam.engines import Model, Session, Tokenizer, load_model
from alignbeam.errors import AlignBeamError, ConfigError, ContextOverflowError, ModelLoadError

__version__ = "0.1.0"

__all__ = [
    "AlignBeamError",
    "ConfigError",
    "ContextOverflowError",
    "Model",
    "ModelLoadError",
    "Session",
    "Tokenizer",
    "__version__",
    "load_model",
]
