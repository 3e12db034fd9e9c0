"""The shapes every benchmark shares (`Item`, `DatasetInfo`), where the data lives, and the file readers.

Each family module (safety, utility, jailbreaks) converts its files into `Item`s with these helpers and declares
its registry entries; `registry` joins them into the one `DATASETS` table.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alignbeam.errors import AlignBeamError

Kind = Literal["harmful", "benign", "utility"]
KINDS: tuple[str, ...] = ("harmful", "benign", "utility")

#: How a set's responses are scored: "refusal" = by the refusal judge (every harmful / benign set); the others
#: name a task scorer in `alignbeam.eval.scorers.SCORERS`. A key rather than the function itself, so the loaders
#: never import the code sandbox and the scorers can look the entry up without an import cycle.
Scorer = Literal["refusal", "gsm8k", "mcq", "pubmedqa", "humaneval", "mbpp"]
REFUSAL: Scorer = "refusal"


@dataclass(frozen=True)
class Item:
    """One prompt to send, with what is needed to score the answer. Frozen: every system must see the same item."""

    id: str
    prompt: str
    kind: Kind
    category: str | None = None
    # excluded from the hash (a dict is unhashable) but not from equality, so items still work in sets and as keys
    reference: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""


@dataclass(frozen=True)
class HubSpec:
    """Where the set lives on the hub, and how: `splits` maps our split to (config, hub split) pairs."""

    id: str
    splits: Mapping[str, Sequence[tuple[str | None, str]]]
    convert: Callable[..., list[Item]]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered benchmark: how to load it, how to score it, what it measures, and how to credit it."""

    name: str
    kind: str  # "harmful", "benign", "utility", or "mixed"
    description: str
    citation: str
    license: str
    loader: Callable[..., list[Item]]
    scorer: Scorer
    splits: tuple[str, ...] = ("all",)
    hub: HubSpec | None = None
    #: `Item.source` values its items carry besides `name` (mbpp's full variant is "mbpp_full"), so an item can be
    #: traced back to its entry (and its scorer) from the item alone
    extra_sources: tuple[str, ...] = ()

    @property
    def default_split(self) -> str:
        return self.splits[0]

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.name, *self.extra_sources)


# --------------------------------------------------------------------------------------------------------------
# where the data is


def default_data_dir() -> Path:
    """`$ALIGNBEAM_DATA`, else `<repo>/../shared/data` (the project's layout; CI lays the same folder beside it)."""
    env = os.environ.get("ALIGNBEAM_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[4].parent / "shared" / "data"


def data_path(data_dir: Path, folder: str, name: str) -> Path:
    """`data_dir/folder/name`, or `data_dir/name` when the user pointed at the set's folder directly.

    `name` is a file (or subfolder) the set must have; a loader that needs the whole folder takes `.parent`.
    """
    if (data_dir / folder / name).exists():
        return data_dir / folder / name
    if (data_dir / name).exists():
        return data_dir / name
    raise AlignBeamError(
        f"benchmark file {folder}/{name} not found under {data_dir}. Pass data_dir=<the folder that holds the "
        f"benchmark folders> (the project expects ../shared/data beside the repository) or set ALIGNBEAM_DATA; "
        f"online users can pass a Hugging Face dataset id where the set has one (data_dir='hf')."
    )


# --------------------------------------------------------------------------------------------------------------
# readers and cell access


def read_csv(path: Path, skip_comments: bool = False) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        lines: Iterable[str] = (ln for ln in fh if not ln.startswith("#")) if skip_comments else fh
        return [dict(r) for r in csv.DictReader(lines)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def cell(row: Mapping[str, Any], *names: str, default: Any = ...) -> Any:
    """A column by any of its names, case-insensitively: the local files and the hub copies name columns differently."""
    lower = {str(k).lower(): v for k, v in row.items()}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    if default is ...:
        raise AlignBeamError(f"expected a column named one of {list(names)}; the row has {sorted(row)}")
    return default


def as_text(v: Any) -> str:
    return "" if v is None else str(v).strip()
