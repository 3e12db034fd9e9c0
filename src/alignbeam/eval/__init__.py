"""Evaluation: benchmark loaders, refusal and utility scorers, runner and report; `evaluate()` runs them."""

from alignbeam.eval.evaluate import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate"]
