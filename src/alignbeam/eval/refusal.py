"""The keyword refusal check, shared with the judge (it lives in alignbeam.method.textrules)."""

from alignbeam.method.textrules import is_refusal

__all__ = ["is_refusal"]
