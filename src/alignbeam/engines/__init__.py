"""Model engines behind one interface (`Model`, `Session`, `Tokenizer`), and `load_model` to pick one."""

from alignbeam.engines.base import Model, ModelInfo, Session, Tokenizer
from alignbeam.engines.loader import ENGINES, load_model

__all__ = ["ENGINES", "Model", "ModelInfo", "Session", "Tokenizer", "load_model"]
