"""Benchmark loaders: every safety and utility set as one list of `Item`s, read by path from the shared data.

Why one shape for every set: the runner, the refusal judge and the utility scorers must not care whether a
prompt came from a CSV of harmful behaviours or a gzip of Python problems. Each loader therefore returns
`Item(id, prompt, kind, category, reference, source)`; `prompt` is the exact user message to send, and
`reference` holds whatever the scorer for that set needs (an answer letter, a number, unit tests).

Why by path: the benchmark files are third-party data with their own licences, kept read-only beside the
project (`../shared/data`, or `$ALIGNBEAM_DATA`) and never copied into the repository. Online users may pass a
public Hugging Face dataset id instead of a folder (`data_dir="hf"` for the registered id, `"hf:owner/name"`,
or a bare `owner/name` that is not a local path); that path needs the optional `datasets` library, which the
project does not install.

Why seeded sampling: `load(name, n=..., seed=...)` takes the first `n` of `numpy.random.default_rng(seed)
.permutation(...)`, so every run and every system compared in a report sees the same items, and a larger `n`
extends a smaller one with the same seed.

Each registry entry carries the dataset's citation and licence so reports can credit what they measured on, and
the name of its scorer (`DatasetInfo.scorer`), so an item is scored by what its set is, not by string matching.

Modules: `base` (Item, DatasetInfo, data paths, readers), `safety` and `utility` (the sets and their entries),
`jailbreaks` (templates, `jailbreak`, JailbreakBench attack artifacts), `files` (users' prompt files), `hub`
(the optional Hugging Face path), `registry` (`DATASETS`, `load`, `info`, `sample`, `citation`).
"""

from __future__ import annotations

from alignbeam.eval.datasets.base import KINDS, REFUSAL, DatasetInfo, HubSpec, Item, Kind, Scorer, default_data_dir
from alignbeam.eval.datasets.files import load_prompt_file
from alignbeam.eval.datasets.jailbreaks import GPTFUZZ_SLOT, JBB_METHODS, apply_template, jailbreak, load_templates
from alignbeam.eval.datasets.registry import DATASETS, citation, entry_for_source, info, load, sample
from alignbeam.eval.datasets.utility import (
    CODE_INSTRUCTION,
    GSM8K_INSTRUCTION,
    MCQ_INSTRUCTION,
    PUBMEDQA_INSTRUCTION,
    format_mcq,
)

__all__ = [
    "CODE_INSTRUCTION",
    "DATASETS",
    "GPTFUZZ_SLOT",
    "GSM8K_INSTRUCTION",
    "JBB_METHODS",
    "KINDS",
    "MCQ_INSTRUCTION",
    "PUBMEDQA_INSTRUCTION",
    "REFUSAL",
    "DatasetInfo",
    "HubSpec",
    "Item",
    "Kind",
    "Scorer",
    "apply_template",
    "citation",
    "default_data_dir",
    "entry_for_source",
    "format_mcq",
    "info",
    "jailbreak",
    "load",
    "load_prompt_file",
    "load_templates",
    "sample",
]
