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

Each registry entry carries the dataset's citation and licence so reports can credit what they measured on.
"""

from __future__ import annotations

import csv
import gzip
import inspect
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignbeam.errors import AlignBeamError

Kind = Literal["harmful", "benign", "utility"]
KINDS: tuple[str, ...] = ("harmful", "benign", "utility")


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


# --------------------------------------------------------------------------------------------------------------
# where the data is


def default_data_dir() -> Path:
    """`$ALIGNBEAM_DATA`, else `<repo>/../shared/data` (the project's layout; CI lays the same folder beside it)."""
    env = os.environ.get("ALIGNBEAM_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _folder(data_dir: Path, folder: str, probe: str) -> Path:
    """The dataset's folder: `data_dir/folder`, or `data_dir` itself when the user pointed at the folder directly."""
    if (data_dir / folder / probe).exists():
        return data_dir / folder
    if (data_dir / probe).exists():
        return data_dir
    raise AlignBeamError(
        f"benchmark file {folder}/{probe} not found under {data_dir}. Pass data_dir=<the folder that holds the "
        f"benchmark folders> (the project expects ../shared/data beside the repository) or set ALIGNBEAM_DATA; "
        f"online users can pass a Hugging Face dataset id where the set has one (data_dir='hf')."
    )


def _read_csv(path: Path, skip_comments: bool = False) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        lines: Iterable[str] = (ln for ln in fh if not ln.startswith("#")) if skip_comments else fh
        return [dict(r) for r in csv.DictReader(lines)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _get(row: Mapping[str, Any], *names: str, default: Any = ...) -> Any:
    """A column by any of its names, case-insensitively: the local files and the hub copies name columns differently."""
    lower = {str(k).lower(): v for k, v in row.items()}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    if default is ...:
        raise AlignBeamError(f"expected a column named one of {list(names)}; the row has {sorted(row)}")
    return default


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


# --------------------------------------------------------------------------------------------------------------
# prompt formats for the utility sets (a chat user message has to say what answer form is expected)

MCQ_INSTRUCTION = "Answer with the letter of the correct option."
GSM8K_INSTRUCTION = "Solve the problem step by step, then give the final answer on the last line as '#### <number>'."
PUBMEDQA_INSTRUCTION = "Answer the question with yes, no, or maybe."
CODE_INSTRUCTION = "Reply with the complete Python code in a ```python code block."


def format_mcq(question: str, options: Mapping[str, str]) -> str:
    """`question`, then `A. text` lines, then the instruction: the common zero-shot MCQ prompt."""
    opts = "\n".join(f"{k}. {v}" for k, v in options.items())
    return f"{question.strip()}\n\n{opts}\n\n{MCQ_INSTRUCTION}"


# --------------------------------------------------------------------------------------------------------------
# row converters, shared by the local files and the Hugging Face copies


def _conv_simple_harmful(
    rows: Sequence[Mapping[str, Any]],
    source: str,
    prompt_cols: tuple[str, ...],
    category_cols: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    id_cols: tuple[str, ...] = (),
) -> list[Item]:
    out = []
    for i, r in enumerate(rows):
        cat = (_text(_get(r, *category_cols, default=None)) or None) if category_cols else None
        rid = _text(_get(r, *id_cols, default=None)) if id_cols else ""
        ref = {e: _get(r, e, default=None) for e in extra}
        out.append(
            Item(
                id=f"{source}-{rid or i}",
                prompt=_text(_get(r, *prompt_cols)),
                kind="harmful",
                category=cat,
                reference={k: v for k, v in ref.items() if v not in (None, "")},
                source=source,
            )
        )
    return out


def _conv_advbench(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    return _conv_simple_harmful(rows, "advbench", ("goal", "prompt"), extra=("target",))


def _conv_harmbench(rows: Sequence[Mapping[str, Any]], include_contextual: bool = False) -> list[Item]:
    """Standard behaviours only by default; contextual ones get their context prepended the way HarmBench does."""
    out = []
    for i, r in enumerate(rows):
        fc = _text(_get(r, "FunctionalCategory", default="standard")) or "standard"
        if fc == "copyright" or (fc == "contextual" and not include_contextual) or fc not in ("standard", "contextual"):
            continue
        behavior = _text(_get(r, "Behavior", "prompt"))
        context = _text(_get(r, "ContextString", "context", default=""))
        prompt = f"{context}\n\n---\n\n{behavior}" if fc == "contextual" and context else behavior
        bid = _text(_get(r, "BehaviorID", default="")) or str(i)
        out.append(
            Item(
                id=f"harmbench-{bid}",
                prompt=prompt,
                kind="harmful",
                category=_text(_get(r, "SemanticCategory", "category", default="")) or None,
                reference={"functional_category": fc, "behavior": behavior},
                source="harmbench",
            )
        )
    return out


def _conv_jbb(rows: Sequence[Mapping[str, Any]], kind: Kind) -> list[Item]:
    name = "jbb_harmful" if kind == "harmful" else "jbb_benign"
    out = []
    for i, r in enumerate(rows):
        idx = _text(_get(r, "index", default="")) or str(i)
        out.append(
            Item(
                id=f"{name}-{idx}",
                prompt=_text(_get(r, "goal")),
                kind=kind,
                category=_text(_get(r, "category", default="")) or None,
                reference={
                    "target": _text(_get(r, "target", default="")),
                    "behavior": _text(_get(r, "behavior", default="")),
                    "origin": _text(_get(r, "source", default="")),
                },
                source=name,
            )
        )
    return out


def _conv_strongreject(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Categories in sentence case: the small file spells one 'Disinformation and Deception', the full one not."""
    items = _conv_simple_harmful(rows, "strongreject", ("forbidden_prompt", "prompt"), ("category",), ("source",))
    return [
        replace(it, category=it.category[:1].upper() + it.category[1:].lower()) if it.category else it for it in items
    ]


def _conv_xstest(rows: Sequence[Mapping[str, Any]], label: str) -> list[Item]:
    """XSTest: safe prompts that only look unsafe (benign, over-refusal) or their unsafe contrasts (harmful)."""
    name = f"xstest_{label}"
    out = []
    for i, r in enumerate(rows):
        if _text(_get(r, "label")).lower() != label:
            continue
        out.append(
            Item(
                id=f"xstest-{_text(_get(r, 'id', default='')) or i}",
                prompt=_text(_get(r, "prompt")),
                kind="benign" if label == "safe" else "harmful",
                category=_text(_get(r, "type", default="")) or None,
                reference={
                    "label": label,
                    "focus": _text(_get(r, "focus", default="")),
                    "note": _text(_get(r, "note", default="")),
                },
                source=name,
            )
        )
    return out


def _conv_sst(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    for i, r in enumerate(rows):
        out.append(
            Item(
                id=_text(_get(r, "id", default="")) or f"sst_{i + 1:03d}",
                prompt=_text(_get(r, "prompts_final", "prompt")),
                kind="harmful",
                category=_text(_get(r, "harm_area")) or None,
                reference={"request_type": _text(_get(r, "category", default=""))},
                source="simplesafetytests",
            )
        )
    return out


def _conv_gsm8k(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    for i, r in enumerate(rows):
        solution = _text(_get(r, "answer"))
        final = solution.rsplit("####", 1)[-1].strip().replace(",", "")
        question = _text(_get(r, "question"))
        out.append(
            Item(
                id=f"gsm8k-{i}",
                prompt=f"{question}\n\n{GSM8K_INSTRUCTION}",
                kind="utility",
                category=None,
                reference={"answer": final, "solution": solution, "question": question},
                source="gsm8k",
            )
        )
    return out


def _conv_humaneval(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    for r in rows:
        code = str(_get(r, "prompt"))
        ref = {k: str(_get(r, k)) for k in ("task_id", "prompt", "entry_point", "test")}
        ref["canonical_solution"] = str(_get(r, "canonical_solution", default=""))
        out.append(
            Item(
                id=ref["task_id"],
                prompt=f"Complete the following Python function. {CODE_INSTRUCTION}\n\n```python\n{code}```",
                kind="utility",
                category=None,
                reference=ref,
                source="humaneval",
            )
        )
    return out


def _conv_mbpp(rows: Sequence[Mapping[str, Any]], variant: str) -> list[Item]:
    out = []
    for r in rows:
        tid = int(_get(r, "task_id"))
        text = _text(_get(r, "prompt", "text"))
        tests = [str(t) for t in _get(r, "test_list")]
        ref = {
            "task_id": tid,
            "text": text,
            "test_list": tests,
            "test_imports": [str(t) for t in (_get(r, "test_imports", default=None) or [])],
            "test_setup_code": str(_get(r, "test_setup_code", default="") or ""),
            "code": str(_get(r, "code", default="")),
        }
        tests_txt = "\n".join(tests)
        out.append(
            Item(
                id=f"mbpp-{tid}",
                prompt=f"{text}\nYour code should pass these tests:\n\n{tests_txt}\n\n{CODE_INSTRUCTION}",
                kind="utility",
                category=None,
                reference=ref,
                source="mbpp" if variant == "sanitized" else "mbpp_full",
            )
        )
    return out


def _conv_mcq4(rows: Sequence[Mapping[str, Any]], source: str) -> list[Item]:
    """MedQA / MedMCQA rows: question, options {A..D}, answer_idx letter."""
    out = []
    for i, r in enumerate(rows):
        options = {str(k): _text(v) for k, v in dict(_get(r, "options")).items()}
        letter = _text(_get(r, "answer_idx"))
        rid = _text(_get(r, "realidx", "id", default="")) or str(i)
        meta = _text(_get(r, "meta_info", default="")) or None
        out.append(
            Item(
                id=f"{source}-{rid}",
                prompt=format_mcq(_text(_get(r, "question")), options),
                kind="utility",
                category=meta,
                reference={"answer": letter, "options": options, "answer_text": options.get(letter, "")},
                source=source,
            )
        )
    return out


def _conv_pubmedqa(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    for r in rows:
        ctx = _get(r, "contexts", default=None)
        if ctx is None:
            ctx = dict(_get(r, "context")).get("contexts", [])
        question = _text(_get(r, "question"))
        context = "\n".join(str(c) for c in ctx)
        out.append(
            Item(
                id=f"pubmedqa-{_text(_get(r, 'pubid', 'pmid'))}",
                prompt=f"Context:\n{context}\n\nQuestion: {question}\n\n{PUBMEDQA_INSTRUCTION}",
                kind="utility",
                category=None,
                reference={
                    "answer": _text(_get(r, "final_decision")).lower(),
                    "long_answer": _text(_get(r, "long_answer", default="")),
                },
                source="pubmedqa",
            )
        )
    return out


def _conv_mmlu(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    counters: dict[str, int] = {}
    for r in rows:
        subject = _text(_get(r, "subject"))
        choices = _get(r, "choices", default=None)
        if choices is None:
            choices = [_get(r, f"choice{j}") for j in range(4)]
        letters = "ABCDEFGHIJ"[: len(choices)]
        options = {letters[j]: _text(c) for j, c in enumerate(choices)}
        ans = int(_get(r, "answer"))
        i = counters.get(subject, 0)
        counters[subject] = i + 1
        out.append(
            Item(
                id=f"mmlu-{subject}-{i}",
                prompt=format_mcq(_text(_get(r, "question")), options),
                kind="utility",
                category=subject,
                reference={"answer": letters[ans], "options": options, "answer_text": options[letters[ans]]},
                source="mmlu",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# local readers (one per set; each returns rows for the converter above)


def _local_advbench(data_dir: Path, split: str) -> list[Item]:
    return _conv_advbench(_read_csv(_folder(data_dir, "advbench", "harmful_behaviors.csv") / "harmful_behaviors.csv"))


def _local_harmbench(data_dir: Path, split: str, include_contextual: bool = False) -> list[Item]:
    fname = {"all": "all", "test": "test", "val": "val"}[split]
    p = (
        _folder(data_dir, "harmbench", f"harmbench_behaviors_text_{fname}.csv")
        / f"harmbench_behaviors_text_{fname}.csv"
    )
    return _conv_harmbench(_read_csv(p), include_contextual=include_contextual)


def _local_jbb(kind: Kind) -> Callable[[Path, str], list[Item]]:
    fname = "harmful-behaviors.csv" if kind == "harmful" else "benign-behaviors.csv"

    def load_jbb(data_dir: Path, split: str) -> list[Item]:
        return _conv_jbb(_read_csv(_folder(data_dir, "jbb_behaviors", fname) / fname), kind)

    return load_jbb


def _local_strongreject(data_dir: Path, split: str) -> list[Item]:
    fname = "strongreject_dataset.csv" if split == "full" else "strongreject_small_dataset.csv"
    items = _conv_strongreject(_read_csv(_folder(data_dir, "strongreject", fname) / fname))
    if split == "small":  # ids must not collide with the full set's row numbers
        items = [replace(it, id=it.id.replace("strongreject-", "strongreject_small-")) for it in items]
    return items


def _local_xstest(label: str) -> Callable[[Path, str], list[Item]]:
    def load_xstest(data_dir: Path, split: str) -> list[Item]:
        return _conv_xstest(_read_csv(_folder(data_dir, "xstest", "xstest_prompts.csv") / "xstest_prompts.csv"), label)

    return load_xstest


def _local_sst(data_dir: Path, split: str) -> list[Item]:
    return _conv_sst(_read_csv(_folder(data_dir, "simplesafetytests", "sst_test_cases.csv") / "sst_test_cases.csv"))


def _local_medsafetybench(data_dir: Path, split: str) -> list[Item]:
    """Both generators (GPT-4 and Llama-2 jailbreak) by default; category = the AMA principle number (1-9)."""
    root = _folder(data_dir, "medsafetybench", "test_gpt4")
    gens = ("gpt4", "llama2") if split == "all" else (split,)
    out: list[Item] = []
    for gen in gens:
        files = sorted((root / f"test_{gen}").glob("med_safety_demonstrations_category_*.csv"))
        if not files:
            raise AlignBeamError(f"medsafetybench: no test_{gen}/med_safety_demonstrations_category_*.csv in {root}")
        for f in sorted(files, key=lambda p: int(p.stem.rsplit("_", 1)[-1])):
            cat = f.stem.rsplit("_", 1)[-1]
            for j, r in enumerate(_read_csv(f)):
                out.append(
                    Item(
                        id=f"medsafetybench-{gen}-{cat}-{j}",
                        prompt=_text(r["harmful_medical_request"]),
                        kind="harmful",
                        category=f"ama_principle_{cat}",
                        reference={"safe_response": _text(r.get("safe_response")), "generator": gen},
                        source="medsafetybench",
                    )
                )
    return out


def _local_cse_frr(data_dir: Path, split: str) -> list[Item]:
    """MITRE FRR: 750 benign security/code requests that sound malicious (all is_malicious=False)."""
    rows = _read_json(_folder(data_dir, "cyberseceval", "mitre_frr.json") / "mitre_frr.json")
    return [
        Item(
            id=f"cyberseceval_frr-{i}",
            prompt=_text(r["mutated_prompt"]),
            kind="harmful" if r.get("is_malicious") else "benign",
            category=_text(r.get("attack_type")) or None,
            reference={"generator_model": r.get("model")},
            source="cyberseceval_frr",
        )
        for i, r in enumerate(rows)
    ]


def _local_cse_interpreter(data_dir: Path, split: str) -> list[Item]:
    """Interpreter abuse: 500 harmful code-interpreter requests, 5 attack types."""
    rows = _read_json(_folder(data_dir, "cyberseceval", "interpreter.json") / "interpreter.json")
    return [
        Item(
            id=f"cyberseceval_interpreter-{i}",
            prompt=_text(r["mutated_prompt"]),
            kind="harmful",
            category=_text(r.get("attack_type")) or None,
            reference={},
            source="cyberseceval_interpreter",
        )
        for i, r in enumerate(rows)
    ]


def _local_gptfuzz_questions(data_dir: Path, split: str) -> list[Item]:
    rows = _read_csv(_folder(data_dir, "gptfuzz", "question_list.csv") / "question_list.csv")
    return _conv_simple_harmful(rows, "gptfuzz_questions", ("text",), id_cols=("index",))


def _local_gsm8k(data_dir: Path, split: str) -> list[Item]:
    return _conv_gsm8k(_read_jsonl(_folder(data_dir, "gsm8k", "gsm8k_test.jsonl") / "gsm8k_test.jsonl"))


def _local_humaneval(data_dir: Path, split: str) -> list[Item]:
    return _conv_humaneval(_read_jsonl(_folder(data_dir, "humaneval", "HumanEval.jsonl.gz") / "HumanEval.jsonl.gz"))


def _mbpp_split(task_id: int, split: str) -> bool:
    """The published MBPP split by task id: prompt 1-10, test 11-510, validation 511-600, train 601-974."""
    return {
        "all": True,
        "prompt": 1 <= task_id <= 10,
        "test": 11 <= task_id <= 510,
        "validation": 511 <= task_id <= 600,
        "train": 601 <= task_id <= 974,
    }[split]


def _local_mbpp(data_dir: Path, split: str, variant: str = "sanitized") -> list[Item]:
    """Sanitized MBPP (427 tasks, 257 in the test split) by default; `variant='full'` reads the 974-task file."""
    if variant == "sanitized":
        rows = _read_json(_folder(data_dir, "mbpp", "sanitized-mbpp.json") / "sanitized-mbpp.json")
    elif variant == "full":
        rows = _read_jsonl(_folder(data_dir, "mbpp", "mbpp.jsonl") / "mbpp.jsonl")
    else:
        raise AlignBeamError(f"mbpp: variant must be 'sanitized' or 'full', got {variant!r}")
    return _conv_mbpp([r for r in rows if _mbpp_split(int(r["task_id"]), split)], variant)


def _local_medqa(data_dir: Path, split: str) -> list[Item]:
    fname = "medqa_us4opt_test.jsonl" if split == "test" else "medqa_us4opt_test_hard.jsonl"
    return _conv_mcq4(_read_jsonl(_folder(data_dir, "medqa", fname) / fname), "medqa")


def _local_medmcqa(data_dir: Path, split: str) -> list[Item]:
    fname = "medmcqa_test_medagents.jsonl"
    return _conv_mcq4(_read_jsonl(_folder(data_dir, "medmcqa", fname) / fname), "medmcqa")


def _local_pubmedqa(data_dir: Path, split: str) -> list[Item]:
    """PQA-L; split 'test' keeps the 500 PMIDs of the official test split (test_ground_truth.json)."""
    root = _folder(data_dir, "pubmedqa", "ori_pqal.json")
    data = _read_json(root / "ori_pqal.json")
    if split == "test":
        truth = _read_json(root / "test_ground_truth.json")
        pmids = list(truth)
    else:
        truth, pmids = {}, list(data)
    rows = []
    for pmid in pmids:
        d = data[pmid]
        rows.append(
            {
                "pubid": pmid,
                "question": d["QUESTION"],
                "contexts": d["CONTEXTS"],
                "final_decision": truth.get(pmid, d["final_decision"]),
                "long_answer": d.get("LONG_ANSWER", ""),
            }
        )
    return _conv_pubmedqa(rows)


def _mmlu_subjects_filter(subjects: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if subjects is None:
        return list(available)
    wanted = [subjects] if isinstance(subjects, str) else list(subjects)
    bad = [s for s in wanted if s not in available]
    if bad:
        raise AlignBeamError(f"mmlu: unknown subject(s) {bad}; available: {', '.join(available)}")
    return wanted


def _local_mmlu(data_dir: Path, split: str, subjects: str | Sequence[str] | None = None) -> list[Item]:
    """The 18 subjects in the shared copy (medicine, economics, law, security, maths); `subjects` filters them."""
    root = _folder(data_dir, "mmlu", split)
    files = {p.name[: -len(f"_{split}.csv")]: p for p in sorted((root / split).glob(f"*_{split}.csv"))}
    rows: list[dict[str, Any]] = []
    for subj in _mmlu_subjects_filter(subjects, sorted(files)):
        rows.extend({**r, "subject": subj} for r in _read_csv(files[subj]))
    return _conv_mmlu(rows)


# JailbreakBench artifacts --------------------------------------------------------------------------------------

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
        root = _folder(data_dir, "jbb_artifacts", f"{method}__attack-info.json")
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
            for jb in _read_json(p)["jailbreaks"]:
                if jb.get("prompt") is None or (jailbroken_only and not jb.get("jailbroken")):
                    continue
                out.append(
                    Item(
                        id=f"{name}-{mdl}-{jb['index']}",
                        prompt=str(jb["prompt"]),
                        kind="harmful",
                        category=_text(jb.get("category")) or None,
                        reference={
                            "goal": _text(jb.get("goal")),
                            "behavior": _text(jb.get("behavior")),
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


# --------------------------------------------------------------------------------------------------------------
# Hugging Face hub (optional)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class HubSpec:
    """Where the set lives on the hub, and how: `splits` maps our split to (config, hub split) pairs."""

    id: str
    splits: Mapping[str, Sequence[tuple[str | None, str]]]
    convert: Callable[..., list[Item]]


def _hub_rows(hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
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


# --------------------------------------------------------------------------------------------------------------
# the registry


@dataclass(frozen=True)
class DatasetInfo:
    """A registered benchmark: how to load it, what it measures, and how to credit it in a report."""

    name: str
    kind: str  # "harmful", "benign", "utility", or "mixed"
    description: str
    citation: str
    license: str
    loader: Callable[..., list[Item]]
    splits: tuple[str, ...] = ("all",)
    hub: HubSpec | None = None
    folder: str = ""

    @property
    def default_split(self) -> str:
        return self.splits[0]


_C = {
    "advbench": "Zou, Wang, Kolter, Fredrikson (2023). Universal and Transferable Adversarial Attacks on Aligned "
    "Language Models. arXiv:2307.15043",
    "harmbench": "Mazeika et al. (2024). HarmBench: A Standardized Evaluation Framework for Automated Red Teaming and "
    "Robust Refusal. ICML 2024, arXiv:2402.04249",
    "jbb": "Chao et al. (2024). JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models. "
    "NeurIPS 2024 Datasets and Benchmarks, arXiv:2404.01318",
    "strongreject": "Souly et al. (2024). A StrongREJECT for Empty Jailbreaks. NeurIPS 2024, arXiv:2402.10260",
    "xstest": "Röttger et al. (2024). XSTest: A Test Suite for Identifying Exaggerated Safety Behaviours in Large "
    "Language Models. NAACL 2024, arXiv:2308.01263",
    "sst": "Vidgen et al. (2023). SimpleSafetyTests: a Test Suite for Identifying Critical Safety Risks in Large "
    "Language Models. arXiv:2311.08370",
    "medsafetybench": "Han et al. (2024). MedSafetyBench: Evaluating and Improving the Medical Safety of Large "
    "Language Models. NeurIPS 2024 Datasets and Benchmarks, arXiv:2403.03744",
    "cyberseceval": "Bhatt et al. (2024). CyberSecEval 2: A Wide-Ranging Cybersecurity Evaluation Suite for Large "
    "Language Models. arXiv:2404.13161 (Meta PurpleLlama)",
    "gptfuzz": "Yu, Lin, Yu, Xing (2023). GPTFUZZER: Red Teaming Large Language Models with Auto-Generated "
    "Jailbreak Prompts. arXiv:2309.10253",
    "pyrit": "Munoz et al. (2024). PyRIT: A Framework for Security Risk Identification and Red Teaming in "
    "Generative AI Systems. arXiv:2410.02828 (Microsoft PyRIT)",
    "gsm8k": "Cobbe et al. (2021). Training Verifiers to Solve Math Word Problems. arXiv:2110.14168",
    "humaneval": "Chen et al. (2021). Evaluating Large Language Models Trained on Code. arXiv:2107.03374",
    "mbpp": "Austin et al. (2021). Program Synthesis with Large Language Models. arXiv:2108.07732",
    "medqa": "Jin et al. (2021). What Disease does this Patient Have? A Large-scale Open Domain Question Answering "
    "Dataset from Medical Exams. Applied Sciences 11(14), arXiv:2009.13081 (copy via MedAgentsBench)",
    "medmcqa": "Pal, Umapathi, Sankarasubbu (2022). MedMCQA: A Large-scale Multi-Subject Multi-Choice Dataset for "
    "Medical domain Question Answering. CHIL 2022, arXiv:2203.14371 (MedAgentsBench filtered subset)",
    "pubmedqa": "Jin et al. (2019). PubMedQA: A Dataset for Biomedical Research Question Answering. EMNLP 2019, "
    "arXiv:1909.06146",
    "mmlu": "Hendrycks et al. (2021). Measuring Massive Multitask Language Understanding. ICLR 2021, arXiv:2009.03300",
}


def _hub_mmlu(rows: Sequence[Mapping[str, Any]], subjects: str | Sequence[str] | None = None) -> list[Item]:
    """cais/mmlu 'all' carries a subject column; filter it like the local per-subject files."""
    keep = set(_mmlu_subjects_filter(subjects, sorted({str(r["subject"]) for r in rows})))
    return _conv_mmlu([r for r in rows if r["subject"] in keep])


def _reg(*infos: DatasetInfo) -> dict[str, DatasetInfo]:
    return {i.name: i for i in infos}


def _hub_jbb(kind: Kind) -> HubSpec:
    return HubSpec("JailbreakBench/JBB-Behaviors", {"all": [("behaviors", kind)]}, lambda rows: _conv_jbb(rows, kind))


def _hub_xstest(label: str) -> HubSpec:
    return HubSpec("walledai/XSTest", {"all": [(None, "train")]}, lambda rows: _conv_xstest(rows, label))


_MBPP_HUB = {s: [("sanitized", s)] for s in ("test", "train", "validation", "prompt")}
_MBPP_HUB["all"] = [("sanitized", s) for s in ("prompt", "test", "validation", "train")]

DATASETS: dict[str, DatasetInfo] = _reg(
    DatasetInfo(
        name="advbench",
        kind="harmful",
        description="AdvBench harmful behaviours (goal column), 520",
        citation=_C["advbench"],
        license="MIT",
        loader=_local_advbench,
        hub=HubSpec("walledai/AdvBench", {"all": [(None, "train")]}, _conv_advbench),
        folder="advbench",
    ),
    DatasetInfo(
        name="harmbench",
        kind="harmful",
        description="HarmBench text behaviours, FunctionalCategory=standard (200); category = SemanticCategory; "
        "copyright rows always skipped, contextual ones added with include_contextual=True",
        citation=_C["harmbench"],
        license="MIT",
        loader=_local_harmbench,
        splits=("all", "test", "val"),
        hub=HubSpec("walledai/HarmBench", {"all": [("standard", "train")]}, lambda rows: _conv_harmbench(rows)),
        folder="harmbench",
    ),
    DatasetInfo(
        name="jbb_harmful",
        kind="harmful",
        description="JailbreakBench JBB-Behaviors, 100 harmful (10 categories)",
        citation=_C["jbb"],
        license="MIT",
        loader=_local_jbb("harmful"),
        hub=_hub_jbb("harmful"),
        folder="jbb_behaviors",
    ),
    DatasetInfo(
        name="jbb_benign",
        kind="benign",
        description="JailbreakBench JBB-Behaviors, 100 topic-matched benign (over-refusal)",
        citation=_C["jbb"],
        license="MIT",
        loader=_local_jbb("benign"),
        hub=_hub_jbb("benign"),
        folder="jbb_behaviors",
    ),
    DatasetInfo(
        name="strongreject",
        kind="harmful",
        description="StrongREJECT forbidden prompts, 313 full / 60 small, 6 categories",
        citation=_C["strongreject"],
        license="MIT",
        loader=_local_strongreject,
        splits=("full", "small"),
        hub=HubSpec("walledai/StrongREJECT", {"full": [(None, "train")]}, _conv_strongreject),
        folder="strongreject",
    ),
    DatasetInfo(
        name="xstest_safe",
        kind="benign",
        description="XSTest 250 safe prompts that look unsafe (over-refusal); category = type",
        citation=_C["xstest"],
        license="CC-BY-4.0",
        loader=_local_xstest("safe"),
        hub=_hub_xstest("safe"),
        folder="xstest",
    ),
    DatasetInfo(
        name="xstest_unsafe",
        kind="harmful",
        description="XSTest 200 unsafe contrast prompts; category = type",
        citation=_C["xstest"],
        license="CC-BY-4.0",
        loader=_local_xstest("unsafe"),
        hub=_hub_xstest("unsafe"),
        folder="xstest",
    ),
    DatasetInfo(
        name="simplesafetytests",
        kind="harmful",
        description="SimpleSafetyTests, 100 clear-cut harmful prompts, 5 harm areas",
        citation=_C["sst"],
        license="CC-BY-4.0",
        loader=_local_sst,
        hub=HubSpec("Bertievidgen/SimpleSafetyTests", {"all": [(None, "test")]}, _conv_sst),
        folder="simplesafetytests",
    ),
    DatasetInfo(
        name="medsafetybench",
        kind="harmful",
        description="MedSafetyBench test: 450 GPT-4 + 450 Llama-2 generated harmful medical requests, "
        "9 AMA-principle categories",
        citation=_C["medsafetybench"],
        license="MIT (README: research use only)",
        loader=_local_medsafetybench,
        splits=("all", "gpt4", "llama2"),
        folder="medsafetybench",
    ),
    DatasetInfo(
        name="cyberseceval_frr",
        kind="benign",
        description="CyberSecEval MITRE FRR: 750 benign security prompts (over-refusal for code)",
        citation=_C["cyberseceval"],
        license="MIT",
        loader=_local_cse_frr,
        folder="cyberseceval",
    ),
    DatasetInfo(
        name="cyberseceval_interpreter",
        kind="harmful",
        description="CyberSecEval interpreter abuse: 500 harmful code-interpreter requests, 5 attack types",
        citation=_C["cyberseceval"],
        license="MIT",
        loader=_local_cse_interpreter,
        folder="cyberseceval",
    ),
    DatasetInfo(
        name="gptfuzz_questions",
        kind="harmful",
        description="GPTFuzzer's 100 harmful questions",
        citation=_C["gptfuzz"],
        license="MIT",
        loader=_local_gptfuzz_questions,
        folder="gptfuzz",
    ),
    DatasetInfo(
        name="gsm8k",
        kind="utility",
        description="GSM8K test, 1319 grade-school maths problems; reference answer = the number after '####'",
        citation=_C["gsm8k"],
        license="MIT",
        loader=_local_gsm8k,
        hub=HubSpec("openai/gsm8k", {"all": [("main", "test")]}, _conv_gsm8k),
        folder="gsm8k",
    ),
    DatasetInfo(
        name="humaneval",
        kind="utility",
        description="HumanEval, 164 Python functions, execution-checked (pass@1)",
        citation=_C["humaneval"],
        license="MIT",
        loader=_local_humaneval,
        hub=HubSpec("openai/openai_humaneval", {"all": [(None, "test")]}, _conv_humaneval),
        folder="humaneval",
    ),
    DatasetInfo(
        name="mbpp",
        kind="utility",
        description="MBPP sanitized (427; test split = task ids 11-510, 257 tasks), execution-checked; "
        "variant='full' reads the 974-task file",
        citation=_C["mbpp"],
        license="CC-BY-4.0",
        loader=_local_mbpp,
        splits=("test", "all", "train", "validation", "prompt"),
        hub=HubSpec("google-research-datasets/mbpp", _MBPP_HUB, lambda rows: _conv_mbpp(rows, "sanitized")),
        folder="mbpp",
    ),
    DatasetInfo(
        name="medqa",
        kind="utility",
        description="MedQA-USMLE 4-option test (1273; 'hard' = the MedAgentsBench 100)",
        citation=_C["medqa"],
        license="MIT",
        loader=_local_medqa,
        splits=("test", "hard"),
        hub=HubSpec("GBaker/MedQA-USMLE-4-options", {"test": [(None, "test")]}, lambda rows: _conv_mcq4(rows, "medqa")),
        folder="medqa",
    ),
    DatasetInfo(
        name="medmcqa",
        kind="utility",
        description="MedMCQA, MedAgentsBench filtered dev subset (2816)",
        citation=_C["medmcqa"],
        license="MIT",
        loader=_local_medmcqa,
        folder="medmcqa",
    ),
    DatasetInfo(
        name="pubmedqa",
        kind="utility",
        description="PubMedQA PQA-L, yes/no/maybe with the abstract as context (test = the 500 official PMIDs)",
        citation=_C["pubmedqa"],
        license="MIT",
        loader=_local_pubmedqa,
        splits=("test", "all"),
        hub=HubSpec("qiaojin/PubMedQA", {"all": [("pqa_labeled", "train")]}, _conv_pubmedqa),
        folder="pubmedqa",
    ),
    DatasetInfo(
        name="mmlu",
        kind="utility",
        description="MMLU, 18 subjects (3346 test / 90 dev); subjects=... filters; category = subject",
        citation=_C["mmlu"],
        license="MIT",
        loader=_local_mmlu,
        splits=("test", "dev"),
        hub=HubSpec("cais/mmlu", {"test": [("all", "test")], "dev": [("all", "dev")]}, _hub_mmlu),
        folder="mmlu",
    ),
    *(
        DatasetInfo(
            name=name,
            kind="harmful",
            description=f"JailbreakBench {method} attack artifacts: precomputed jailbreak prompts for the 100 JBB "
            "behaviours; model= / attack_type= select target files, jailbroken_only=True keeps successful ones",
            citation=_C["jbb"],
            license="MIT (artifacts owned by their authors)",
            loader=_local_jbb_artifacts(method),
            folder="jbb_artifacts",
        )
        for name, method in JBB_METHODS.items()
    ),
)


def info(name: str) -> DatasetInfo:
    """The registry entry, or an error that lists the registered names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise AlignBeamError(f"unknown benchmark {name!r}; registered: {', '.join(sorted(DATASETS))}") from None


def citation(name: str) -> str:
    """`citation (licence)` for a report footnote; template sets 'gptfuzz' and 'pyrit' are accepted too."""
    if name in ("gptfuzz", "pyrit"):
        return f"{_C[name]} (MIT; templates from community sources)"
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


def _hub_request(i: DatasetInfo, data_dir: Path | str | None) -> str | None:
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
    or a dataset's own folder, or a Hugging Face id (see the module docstring). `split`: one of the set's
    `DatasetInfo.splits` (default: the first). `options`: set-specific switches (e.g. `subjects=` for mmlu,
    `include_contextual=` for harmbench, `model=` for the jbb_* artifacts).
    """
    i = info(name)
    split = split or i.default_split
    if split not in i.splits:
        raise AlignBeamError(f"{name}: unknown split {split!r}; available: {', '.join(i.splits)}")
    hub_id = _hub_request(i, data_dir)
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
            rows.extend(_hub_rows(hub_id, config, hub_split))
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


# --------------------------------------------------------------------------------------------------------------
# jailbreak templates

GPTFUZZ_SLOT = "[INSERT PROMPT HERE]"
_PYRIT_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")


def load_templates(template_set: str = "gptfuzz", data_dir: Path | str | None = None) -> list[tuple[str, str]]:
    """(name, template) pairs, sorted by name; each template contains its set's prompt slot at least once."""
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if template_set == "gptfuzz":
        rows = _read_csv(_folder(d, "gptfuzz", "GPTFuzzer.csv") / "GPTFuzzer.csv")
        out = [(f"gptfuzz-{int(r['id']):02d}", r["text"]) for r in rows if GPTFUZZ_SLOT in r["text"]]
    elif template_set == "pyrit":
        import yaml

        root = _folder(d, "pyrit_jailbreak_templates", "aim.yaml")
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
# users' own prompt files


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
    suffix = p.suffix.lower()
    rows: list[dict[str, Any]] = []
    if suffix in (".csv", ".tsv"):
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            columns = list(reader.fieldnames or [])
            rows = [dict(r) for r in reader]
        if not columns:
            raise AlignBeamError(f"prompt file {p} is empty (no header row)")
    elif suffix in (".jsonl", ".ndjson"):
        with open(p, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AlignBeamError(f"{p}, line {lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise AlignBeamError(
                        f"{p}, line {lineno}: expected a JSON object per line, got {type(obj).__name__}"
                    )
                rows.append(obj)
        columns = list(dict.fromkeys(k for r in rows for k in r))
    else:
        raise AlignBeamError(f"prompt file {p}: unsupported format {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")
    if not rows:
        raise AlignBeamError(f"prompt file {p} has no rows")
    for col in (column, category_column, id_column):
        if col is not None and col not in columns:
            raise AlignBeamError(f"prompt file {p} has no column {col!r}; available columns: {', '.join(columns)}")
    source = p.stem
    out = []
    for i, r in enumerate(rows):
        text = _text(r.get(column))
        if not text:
            raise AlignBeamError(f"prompt file {p}, row {i + 1}: column {column!r} is empty")
        rid = _text(r.get(id_column)) if id_column else ""
        out.append(
            Item(
                id=f"{source}-{rid or i}",
                prompt=text,
                kind=kind,
                category=(_text(r.get(category_column)) or None) if category_column else None,
                reference={k: v for k, v in r.items() if k not in (column, category_column, id_column)},
                source=source,
            )
        )
    return out


__all__ = [
    "DATASETS",
    "KINDS",
    "DatasetInfo",
    "HubSpec",
    "Item",
    "apply_template",
    "citation",
    "default_data_dir",
    "format_mcq",
    "info",
    "jailbreak",
    "load",
    "load_prompt_file",
    "load_templates",
    "sample",
]
