"""Users' own prompt files (CSV, TSV or JSONL), as `Item`s of the kind the user says they are.

They have no registry entry: harmful and benign ones are graded by the refusal judge like any safety set, and
`score_item` refuses utility ones rather than guess a task scorer for them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import KINDS, Item, Kind, as_text


def load_prompt_file(
    path: Path | str,
    column: str = "prompt",
    kind: Kind = "harmful",
    *,
    category_column: str | None = None,
    id_column: str | None = None,
) -> list[Item]:
    """Prompts from a user's CSV or JSONL file (one object per line); every other column goes to `reference`.

    Errors say what to fix: a missing file, an unknown format, a missing column (listing the ones there are),
    an empty file, or an empty prompt (with its row number), because a silently shorter prompt set would skew
    a refusal rate without anyone noticing.
    """
    p = Path(path).expanduser()
    if kind not in KINDS:
        raise AlignBeamError(f"kind must be one of {KINDS}, got {kind!r}")
    if not p.is_file():
        raise AlignBeamError(f"prompt file {p} not found")
    rows, columns = _read_rows(p)
    if not rows:
        raise AlignBeamError(f"prompt file {p} has no rows")
    for col in (column, category_column, id_column):
        if col is not None and col not in columns:
            raise AlignBeamError(f"prompt file {p} has no column {col!r}; available columns: {', '.join(columns)}")
    source = p.stem
    out = []
    for i, r in enumerate(rows):
        text = as_text(r.get(column))
        if not text:
            raise AlignBeamError(f"prompt file {p}, row {i + 1}: column {column!r} is empty")
        rid = as_text(r.get(id_column)) if id_column else ""
        out.append(
            Item(
                id=f"{source}-{rid or i}",
                prompt=text,
                kind=kind,
                category=(as_text(r.get(category_column)) or None) if category_column else None,
                reference={k: v for k, v in r.items() if k not in (column, category_column, id_column)},
                source=source,
            )
        )
    return out


def _read_rows(p: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a CSV, TSV or JSONL file and its columns (in the order they first appear)."""
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            columns = list(reader.fieldnames or [])
            rows = [dict(r) for r in reader]
        if not columns:
            raise AlignBeamError(f"prompt file {p} is empty (no header row)")
        return rows, columns
    if suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(p)
        return rows, list(dict.fromkeys(k for r in rows for k in r))
    raise AlignBeamError(f"prompt file {p}: unsupported format {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")


def _read_jsonl(p: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; the error names the line that is not one."""
    rows: list[dict[str, Any]] = []
    with open(p, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise AlignBeamError(f"{p}, line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise AlignBeamError(f"{p}, line {lineno}: expected a JSON object per line, got {type(obj).__name__}")
            rows.append(obj)
    return rows
