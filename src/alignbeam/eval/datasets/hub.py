"""The optional Hugging Face path: which `data_dir` values ask for the hub, and fetching a split's rows.

The rows go through the same converters as the local files, so a hub copy yields the same `Item`s. Loading needs
the optional `datasets` library, which the project does not install; without it the error says to pass a path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import DatasetInfo

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_request(i: DatasetInfo, data_dir: Path | str | None) -> str | None:
    """The hub id when `data_dir` asks for the hub ('hf', 'hf:owner/name', or an `owner/name` that is no local path)."""
    if not isinstance(data_dir, str):
        return None
    s = data_dir.strip()
    if s in ("hf", "hf:", "hub"):
        if i.hub is None:
            raise AlignBeamError(f"{i.name} has no registered Hugging Face id; pass data_dir=<local data folder>.")
        return i.hub.id
    if s.startswith("hf:"):
        return s[3:].strip("/")
    if _HUB_ID.fullmatch(s) and not Path(s).expanduser().exists():
        return s
    return None


def hub_rows(hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as e:
        raise AlignBeamError(
            f"{hub_id!r} was taken as a Hugging Face dataset id (it is not a local folder); loading it from the hub "
            "needs the optional `datasets` library (pip install datasets), which alignbeam does not install. "
            "Or pass data_dir=<local folder with the benchmark files> (the project expects ../shared/data)."
        ) from e
    try:
        ds = (
            datasets.load_dataset(hub_id, config, split=split) if config else datasets.load_dataset(hub_id, split=split)
        )
    except Exception as e:  # network, auth, unknown id: all end the same way for the user
        raise AlignBeamError(f"could not load {hub_id!r} (config={config!r}, split={split!r}) from the hub: {e}") from e
    return [dict(r) for r in ds]
