"""Row converters of the safety sets, shared by the local files and the Hugging Face copies: rows in, `Item`s out.

Apart from `safety` (the loaders and registry entries) so that each module stays short; the converters are the
part that knows each benchmark's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from alignbeam.eval.datasets.base import Item, Kind, as_text, cell


def conv_simple_harmful(
    rows: Sequence[Mapping[str, Any]],
    source: str,
    prompt_cols: tuple[str, ...],
    category_cols: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    id_cols: tuple[str, ...] = (),
) -> list[Item]:
    out = []
    for i, r in enumerate(rows):
        cat = (as_text(cell(r, *category_cols, default=None)) or None) if category_cols else None
        rid = as_text(cell(r, *id_cols, default=None)) if id_cols else ""
        ref = {e: cell(r, e, default=None) for e in extra}
        out.append(
            Item(
                id=f"{source}-{rid or i}",
                prompt=as_text(cell(r, *prompt_cols)),
                kind="harmful",
                category=cat,
                reference={k: v for k, v in ref.items() if v not in (None, "")},
                source=source,
            )
        )
    return out


def conv_advbench(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    return conv_simple_harmful(rows, "advbench", ("goal", "prompt"), extra=("target",))


def conv_harmbench(rows: Sequence[Mapping[str, Any]], include_contextual: bool = False) -> list[Item]:
    """Standard behaviours only by default; contextual ones get their context prepended the way HarmBench does."""
    out = []
    for i, r in enumerate(rows):
        fc = as_text(cell(r, "FunctionalCategory", default="standard")) or "standard"
        if fc == "copyright" or (fc == "contextual" and not include_contextual) or fc not in ("standard", "contextual"):
            continue
        behavior = as_text(cell(r, "Behavior", "prompt"))
        context = as_text(cell(r, "ContextString", "context", default=""))
        prompt = f"{context}\n\n---\n\n{behavior}" if fc == "contextual" and context else behavior
        bid = as_text(cell(r, "BehaviorID", default="")) or str(i)
        out.append(
            Item(
                id=f"harmbench-{bid}",
                prompt=prompt,
                kind="harmful",
                category=as_text(cell(r, "SemanticCategory", "category", default="")) or None,
                reference={"functional_category": fc, "behavior": behavior},
                source="harmbench",
            )
        )
    return out


def conv_jbb(rows: Sequence[Mapping[str, Any]], kind: Kind) -> list[Item]:
    name = "jbb_harmful" if kind == "harmful" else "jbb_benign"
    out = []
    for i, r in enumerate(rows):
        idx = as_text(cell(r, "index", default="")) or str(i)
        out.append(
            Item(
                id=f"{name}-{idx}",
                prompt=as_text(cell(r, "goal")),
                kind=kind,
                category=as_text(cell(r, "category", default="")) or None,
                reference={
                    "target": as_text(cell(r, "target", default="")),
                    "behavior": as_text(cell(r, "behavior", default="")),
                    "origin": as_text(cell(r, "source", default="")),
                },
                source=name,
            )
        )
    return out


def conv_strongreject(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Categories in sentence case: the small file spells one 'Disinformation and Deception', the full one not."""
    items = conv_simple_harmful(rows, "strongreject", ("forbidden_prompt", "prompt"), ("category",), ("source",))
    return [
        replace(it, category=it.category[:1].upper() + it.category[1:].lower()) if it.category else it for it in items
    ]


def conv_xstest(rows: Sequence[Mapping[str, Any]], label: str) -> list[Item]:
    """XSTest: safe prompts that only look unsafe (benign, over-refusal) or their unsafe contrasts (harmful)."""
    name = f"xstest_{label}"
    out = []
    for i, r in enumerate(rows):
        if as_text(cell(r, "label")).lower() != label:
            continue
        out.append(
            Item(
                id=f"xstest-{as_text(cell(r, 'id', default='')) or i}",
                prompt=as_text(cell(r, "prompt")),
                kind="benign" if label == "safe" else "harmful",
                category=as_text(cell(r, "type", default="")) or None,
                reference={
                    "label": label,
                    "focus": as_text(cell(r, "focus", default="")),
                    "note": as_text(cell(r, "note", default="")),
                },
                source=name,
            )
        )
    return out


def conv_sst(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    return [
        Item(
            id=as_text(cell(r, "id", default="")) or f"sst_{i + 1:03d}",
            prompt=as_text(cell(r, "prompts_final", "prompt")),
            kind="harmful",
            category=as_text(cell(r, "harm_area")) or None,
            reference={"request_type": as_text(cell(r, "category", default=""))},
            source="simplesafetytests",
        )
        for i, r in enumerate(rows)
    ]
