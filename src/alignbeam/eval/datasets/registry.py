"""The registry of every benchmark, and `load`: pick the entry, read its files (or the hub), sample.

The family modules declare their entries next to their loaders; this module joins them (safety sets first, then
utility sets, then the JailbreakBench attack artifacts, then the project's own rewordings of held-out sets: the
order listings and reports show them in).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import DatasetInfo, Item, default_data_dir
from alignbeam.eval.datasets.hub import hub_request, hub_rows
from alignbeam.eval.datasets.jailbreaks import JBB_ARTIFACT_DATASETS, TEMPLATE_CITATIONS
from alignbeam.eval.datasets.safety import SAFETY_DATASETS
from alignbeam.eval.datasets.transforms import TRANSFORM_DATASETS
from alignbeam.eval.datasets.utility import UTILITY_DATASETS

DATASETS: dict[str, DatasetInfo] = {
    i.name: i for i in (*SAFETY_DATASETS, *UTILITY_DATASETS, *JBB_ARTIFACT_DATASETS, *TRANSFORM_DATASETS)
}

_BY_SOURCE: dict[str, DatasetInfo] = {src: i for i in DATASETS.values() for src in i.sources}


def info(name: str) -> DatasetInfo:
    """The registry entry, or an error that lists the registered names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise AlignBeamError(f"unknown benchmark {name!r}; registered: {', '.join(sorted(DATASETS))}") from None


def entry_for_source(source: str) -> DatasetInfo | None:
    """The entry whose loader gives items this `Item.source`; None for jailbreak-wrapped items ('advbench+pyrit')
    and users' prompt files, which belong to no registered set."""
    return _BY_SOURCE.get(source)


def citation(name: str) -> str:
    """`citation (licence)` for a report footnote; template sets 'gptfuzz' and 'pyrit' are accepted too."""
    if name in TEMPLATE_CITATIONS:
        return f"{TEMPLATE_CITATIONS[name]} (MIT; templates from community sources)"
    i = info(name)
    return f"{i.citation} ({i.license})"


def sample(items: Sequence[Item], n: int | None, seed: int = 0) -> list[Item]:
    """The first `n` of a seeded permutation (all items, in file order, when `n` is None).

    A permutation prefix, not `rng.choice`, so that n=50 is contained in n=100 for the same seed and a report
    can grow its sample without rerunning the items it already has.
    """
    if n is None:
        return list(items)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise AlignBeamError(f"n must be a positive integer (or None for all items), got {n!r}")
    perm = np.random.default_rng(seed).permutation(len(items))[:n]
    return [items[int(i)] for i in perm]


def load(
    name: str,
    n: int | None = None,
    seed: int = 0,
    data_dir: Path | str | None = None,
    split: str | None = None,
    **options: Any,
) -> list[Item]:
    """Load a registered benchmark (optionally a seeded sample of `n` items).

    `data_dir`: the folder holding the benchmark folders (default: `$ALIGNBEAM_DATA` or `<repo>/../shared/data`),
    or a dataset's own folder, or a Hugging Face id (see the package docstring). `split`: one of the set's
    `DatasetInfo.splits` (default: the first). `options`: set-specific switches (e.g. `subjects=` for mmlu,
    `include_contextual=` for harmbench, `model=` for the jbb_* artifacts).
    """
    i = info(name)
    split = split or i.default_split
    if split not in i.splits:
        raise AlignBeamError(f"{name}: unknown split {split!r}; available: {', '.join(i.splits)}")
    hub_id = hub_request(i, data_dir)
    if hub_id is not None:
        if i.hub is None:
            raise AlignBeamError(
                f"{name} has no Hugging Face loader (no public copy in the same format); pass data_dir=<local folder>."
            )
        if split not in i.hub.splits:
            raise AlignBeamError(
                f"{name}: split {split!r} is not available from the hub (hub splits: {', '.join(i.hub.splits)}); "
                "pass data_dir=<local folder> for it."
            )
        _check_options(name, i.hub.convert, options, skip=1)
        rows: list[dict[str, Any]] = []
        for config, hub_split in i.hub.splits[split]:
            rows.extend(hub_rows(hub_id, config, hub_split))
        items = i.hub.convert(rows, **options)
    else:
        d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        if not d.is_dir():
            raise AlignBeamError(
                f"benchmark data folder {d} does not exist. Pass data_dir=<folder with the benchmark folders> or set "
                "ALIGNBEAM_DATA (the project expects ../shared/data beside the repository); online users can pass "
                "data_dir='hf' (needs the `datasets` library) where the set has a Hugging Face copy."
            )
        _check_options(name, i.loader, options, skip=2)
        items = i.loader(d, split, **options)
    return sample(items, n, seed)


def _check_options(name: str, fn: Callable[..., Any], options: Mapping[str, Any], skip: int) -> None:
    params = list(inspect.signature(fn).parameters.values())[skip:]
    allowed = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise AlignBeamError(f"{name}: unknown option(s) {bad}; accepted: {allowed or 'none'}")
