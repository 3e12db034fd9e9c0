"""Jailbreaks: templates that wrap a harmful request (GPTFuzz, PyRIT), and JailbreakBench's precomputed attack
prompts (PAIR, GCG, ...) as registered harmful sets.

Why both: templates measure refusal under a generic attack on any harmful set, the artifacts under attacks that
were optimised against a specific model; either way the item stays `harmful` and keeps its goal in `reference`,
so refusal under attack can be compared with refusal of the plain request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import (
    REFUSAL,
    DatasetInfo,
    Item,
    as_text,
    data_path,
    default_data_dir,
    read_csv,
    read_json,
)
from alignbeam.eval.datasets.safety import GPTFUZZ_CITATION, JBB_CITATION

#: citations of the template sets, which are not registered datasets but are credited in reports all the same
TEMPLATE_CITATIONS: dict[str, str] = {
    "gptfuzz": GPTFUZZ_CITATION,
    "pyrit": "Munoz et al. (2024). PyRIT: A Framework for Security Risk Identification and Red Teaming in "
    "Generative AI Systems. arXiv:2410.02828 (Microsoft PyRIT)",
}

# --------------------------------------------------------------------------------------------------------------
# templates

GPTFUZZ_SLOT = "[INSERT PROMPT HERE]"
_PYRIT_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")


def load_templates(template_set: str = "gptfuzz", data_dir: Path | str | None = None) -> list[tuple[str, str]]:
    """(name, template) pairs, sorted by name; each template contains its set's prompt slot at least once."""
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if template_set == "gptfuzz":
        rows = read_csv(data_path(d, "gptfuzz", "GPTFuzzer.csv"))
        out = [(f"gptfuzz-{int(r['id']):02d}", r["text"]) for r in rows if GPTFUZZ_SLOT in r["text"]]
    elif template_set == "pyrit":
        import yaml

        root = data_path(d, "pyrit_jailbreak_templates", "aim.yaml").parent
        out = []
        for p in sorted(root.glob("*.yaml")):
            with open(p, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh)
            value = str((doc or {}).get("value", "")).strip()
            if _PYRIT_SLOT.search(value):
                out.append((f"pyrit-{p.stem}", value))
    else:
        raise AlignBeamError(f"unknown template_set {template_set!r}; use 'gptfuzz' or 'pyrit'")
    if not out:
        raise AlignBeamError(f"no {template_set} templates with a prompt slot found under {d}")
    return sorted(out)


def apply_template(template: str, prompt: str) -> str:
    """Insert `prompt` into either slot style; a function replacement so backslashes in prompts stay literal."""
    return _PYRIT_SLOT.sub(lambda _m: prompt, template.replace(GPTFUZZ_SLOT, prompt))


def jailbreak(
    items: Sequence[Item],
    template_set: str = "gptfuzz",
    n_templates: int | None = 5,
    seed: int = 0,
    mode: Literal["product", "random"] = "product",
    data_dir: Path | str | None = None,
) -> list[Item]:
    """Wrap harmful items in jailbreak templates (GPTFuzz `[INSERT PROMPT HERE]` or PyRIT `{{ prompt }}`).

    `n_templates` templates are chosen by a seeded permutation (None = all). `mode="product"` pairs every item
    with every chosen template; `mode="random"` gives each item one of them (seeded), keeping the set's size.
    The wrapped item stays `harmful`; its category records the template and the original category, goal and id
    go to `reference`, so refusal under attack can be compared with refusal of the plain request.
    """
    not_harmful = [it.id for it in items if it.kind != "harmful"]
    if not_harmful:
        raise AlignBeamError(f"jailbreak() wraps harmful items only; got non-harmful items {not_harmful[:5]}")
    templates = load_templates(template_set, data_dir)
    if n_templates is not None:
        if n_templates < 1:
            raise AlignBeamError(f"n_templates must be >= 1 (or None for all), got {n_templates}")
        perm = np.random.default_rng(seed).permutation(len(templates))[:n_templates]
        templates = [templates[int(k)] for k in perm]
    if mode == "product":
        pairs = [(it, t) for it in items for t in templates]
    elif mode == "random":
        picks = np.random.default_rng(seed + 1).integers(0, len(templates), size=len(items))
        pairs = [(it, templates[int(k)]) for it, k in zip(items, picks)]
    else:
        raise AlignBeamError(f"mode must be 'product' or 'random', got {mode!r}")
    return [
        Item(
            id=f"{it.id}|{tname}",
            prompt=apply_template(ttext, it.prompt),
            kind="harmful",
            category=tname,
            reference={**it.reference, "goal": it.prompt, "base_id": it.id, "base_category": it.category,
                       "template": tname},
            source=f"{it.source}+{template_set}",
        )
        for it, (tname, ttext) in pairs
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# JailbreakBench artifacts

JBB_METHODS: dict[str, str] = {
    "jbb_pair": "PAIR",
    "jbb_gcg": "GCG",
    "jbb_jbc": "JBC",
    "jbb_random_search": "prompt_with_random_search",
    "jbb_dsn": "DSN",
}


def _local_jbb_artifacts(method: str) -> Callable[..., list[Item]]:
    def load_artifacts(
        data_dir: Path,
        split: str,
        model: str | None = None,
        attack_type: str | None = None,
        jailbroken_only: bool = False,
    ) -> list[Item]:
        """Precomputed attack prompts against the JBB behaviours; attacks that found no prompt (null) are skipped.

        `model` / `attack_type` select the target model file(s) the attack was run against (default: all of
        them); `jailbroken_only` keeps only prompts that broke their original target. The artifacts predate the
        final JBB wording of 7 goals, so match them to jbb_harmful by index, not by goal text.
        """
        root = data_path(data_dir, "jbb_artifacts", f"{method}__attack-info.json").parent
        files = sorted(p for p in root.glob(f"{method}__*__*.json") if not p.name.endswith("attack-info.json"))
        chosen = []
        for p in files:
            _, atype, mdl = p.stem.split("__", 2)
            if (model is None or mdl == model) and (attack_type is None or atype == attack_type):
                chosen.append((atype, mdl, p))
        if not chosen:
            avail = ", ".join(f"{p.stem.split('__', 2)[2]} ({p.stem.split('__', 2)[1]})" for p in files)
            raise AlignBeamError(
                f"{method}: no artifact for model={model!r} attack_type={attack_type!r}; have: {avail}"
            )
        out = []
        name = next(k for k, v in JBB_METHODS.items() if v == method)
        for atype, mdl, p in chosen:
            for jb in read_json(p)["jailbreaks"]:
                if jb.get("prompt") is None or (jailbroken_only and not jb.get("jailbroken")):
                    continue
                out.append(
                    Item(
                        id=f"{name}-{mdl}-{jb['index']}",
                        prompt=str(jb["prompt"]),
                        kind="harmful",
                        category=as_text(jb.get("category")) or None,
                        reference={
                            "goal": as_text(jb.get("goal")),
                            "behavior": as_text(jb.get("behavior")),
                            "method": method,
                            "attack_type": atype,
                            "target_model": mdl,
                            "jailbroken": bool(jb.get("jailbroken")),
                        },
                        source=name,
                    )
                )
        return out

    return load_artifacts


JBB_ARTIFACT_DATASETS: tuple[DatasetInfo, ...] = tuple(
    DatasetInfo(
        name=name,
        kind="harmful",
        description=f"JailbreakBench {method} attack artifacts: precomputed jailbreak prompts for the 100 JBB "
        "behaviours; model= / attack_type= select target files, jailbroken_only=True keeps successful ones",
        citation=JBB_CITATION,
        license="MIT (artifacts owned by their authors)",
        loader=_local_jbb_artifacts(method),
        scorer=REFUSAL,
    )
    for name, method in JBB_METHODS.items()
)
