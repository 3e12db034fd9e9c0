"""What calibration reads: a deployer's traffic (acceptable unless labelled harmful) and harmful request sets.

Traffic comes as the server receives it (a JSONL of chat request bodies: `messages`, or `prompt`), as a CSV or
JSONL column of prompts, or as the server's own shadow-mode log (`alignbeam serve --enforce false` logs each
request it would have decided). A `label` field marks a row harmful (`harmful`, `unsafe`, `1`, `true`); every
other row is taken as acceptable traffic, whose refusal is over-refusal.
Harmful rows are the plainly worded harmful families of the data folder (each family a unit of the held-out
split), plus any red-team file of the deployer's own.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbeam.engines.base import Message
from alignbeam.errors import AlignBeamError
from alignbeam.method.request import to_messages

#: the harmful families of the data folder read by default: plainly worded requests (rewordings and jailbreak
#: templates are evaluation protocols of their own, docs/evaluation.md)
HARMFUL_FAMILIES = (
    "advbench",
    "harmbench",
    "jbb_harmful",
    "strongreject",
    "xstest_unsafe",
    "simplesafetytests",
    "medsafetybench",
    "cyberseceval_interpreter",
    "gptfuzz_questions",
)
HARMFUL_LABELS = frozenset({"harmful", "unsafe", "1", "true", "yes"})


@dataclass(frozen=True)
class Row:
    id: str
    messages: list[Message]
    harmful: bool
    family: str  # the traffic file's name, or the harmful set's: the unit a held-out split keeps apart


def load_traffic(path: str | Path, column: str = "prompt", label_column: str = "label") -> list[Row]:
    """Rows of a JSONL (request bodies, a server log, or a `column` of prompts) or CSV traffic file."""
    path = Path(path)
    if not path.is_file():
        raise AlignBeamError(f"traffic file {path}: no such file")
    records = _csv(path) if path.suffix.lower() == ".csv" else _jsonl(path)
    rows = []
    for i, rec in enumerate(records):
        messages = _messages(rec, column)
        if messages is None:
            continue  # a log line that is not a request (a startup line, an error)
        label = str(rec.get(label_column, "")).strip().lower()
        rows.append(Row(f"{path.stem}-{i}", messages, label in HARMFUL_LABELS, path.stem))
    if not rows:
        raise AlignBeamError(
            f"traffic file {path}: no requests found (each line needs `messages`, `prompt` or the column {column!r})"
        )
    return rows


def _jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise AlignBeamError(
                f"{path} line {n} is not JSON ({e.msg}): one request body or log entry a line"
            ) from None
        if isinstance(rec, dict):
            out.append(rec.get("request", rec) if isinstance(rec.get("request"), dict) else rec)
    return out


def _csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _messages(rec: dict[str, Any], column: str) -> list[Message] | None:
    """The conversation of one record: chat `messages`, else the prompt column, else None."""
    try:
        if isinstance(rec.get("messages"), list):
            return to_messages(rec["messages"])
        text = rec.get(column, rec.get("prompt"))
        return to_messages(str(text)) if isinstance(text, str) and text.strip() else None
    except AlignBeamError:
        return None


def harmful_rows(
    data_dir: str | Path | None, per_family: int, seed: int = 0, families: tuple[str, ...] = HARMFUL_FAMILIES
) -> list[Row]:
    """`per_family` seeded rows of each harmful family of the data folder (a family that is missing is skipped)."""
    from alignbeam.eval import datasets as D

    rows = []
    for name in families:
        try:
            items = D.load(name, n=per_family, seed=seed, data_dir=Path(data_dir) if data_dir else None)
        except (AlignBeamError, FileNotFoundError, OSError):
            continue
        rows += [Row(it.id, to_messages(it.prompt), True, name) for it in items]
    if not rows:
        raise AlignBeamError("no harmful family could be read from the data folder: pass --data-dir or --harmful FILE")
    return rows


def redteam_rows(path: str | Path, column: str = "prompt") -> list[Row]:
    """The deployer's own harmful requests: every row is harmful, whatever its label says."""
    return [Row(r.id, r.messages, True, "redteam") for r in load_traffic(path, column)]
