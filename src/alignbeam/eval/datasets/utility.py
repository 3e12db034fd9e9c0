"""Utility sets: maths (GSM8K), code (HumanEval, MBPP), medical and general multiple choice (MedQA, MedMCQA,
MMLU) and PubMedQA. Each entry names its task scorer; `reference` holds what that scorer needs.

A chat user message has to say what answer form is expected, so every prompt ends with its instruction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import (
    DatasetInfo,
    HubSpec,
    Item,
    as_text,
    cell,
    data_path,
    read_csv,
    read_json,
    read_jsonl,
)

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


def _conv_gsm8k(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    for i, r in enumerate(rows):
        solution = as_text(cell(r, "answer"))
        final = solution.rsplit("####", 1)[-1].strip().replace(",", "")
        question = as_text(cell(r, "question"))
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
        code = str(cell(r, "prompt"))
        ref = {k: str(cell(r, k)) for k in ("task_id", "prompt", "entry_point", "test")}
        ref["canonical_solution"] = str(cell(r, "canonical_solution", default=""))
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
        tid = int(cell(r, "task_id"))
        text = as_text(cell(r, "prompt", "text"))
        tests = [str(t) for t in cell(r, "test_list")]
        ref = {
            "task_id": tid,
            "text": text,
            "test_list": tests,
            "test_imports": [str(t) for t in (cell(r, "test_imports", default=None) or [])],
            "test_setup_code": str(cell(r, "test_setup_code", default="") or ""),
            "code": str(cell(r, "code", default="")),
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
        options = {str(k): as_text(v) for k, v in dict(cell(r, "options")).items()}
        letter = as_text(cell(r, "answer_idx"))
        rid = as_text(cell(r, "realidx", "id", default="")) or str(i)
        meta = as_text(cell(r, "meta_info", default="")) or None
        out.append(
            Item(
                id=f"{source}-{rid}",
                prompt=format_mcq(as_text(cell(r, "question")), options),
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
        ctx = cell(r, "contexts", default=None)
        if ctx is None:
            ctx = dict(cell(r, "context")).get("contexts", [])
        question = as_text(cell(r, "question"))
        context = "\n".join(str(c) for c in ctx)
        out.append(
            Item(
                id=f"pubmedqa-{as_text(cell(r, 'pubid', 'pmid'))}",
                prompt=f"Context:\n{context}\n\nQuestion: {question}\n\n{PUBMEDQA_INSTRUCTION}",
                kind="utility",
                category=None,
                reference={
                    "answer": as_text(cell(r, "final_decision")).lower(),
                    "long_answer": as_text(cell(r, "long_answer", default="")),
                },
                source="pubmedqa",
            )
        )
    return out


def _conv_mmlu(rows: Sequence[Mapping[str, Any]]) -> list[Item]:
    out = []
    counters: dict[str, int] = {}
    for r in rows:
        subject = as_text(cell(r, "subject"))
        choices = cell(r, "choices", default=None)
        if choices is None:
            choices = [cell(r, f"choice{j}") for j in range(4)]
        letters = "ABCDEFGHIJ"[: len(choices)]
        options = {letters[j]: as_text(c) for j, c in enumerate(choices)}
        ans = int(cell(r, "answer"))
        i = counters.get(subject, 0)
        counters[subject] = i + 1
        out.append(
            Item(
                id=f"mmlu-{subject}-{i}",
                prompt=format_mcq(as_text(cell(r, "question")), options),
                kind="utility",
                category=subject,
                reference={"answer": letters[ans], "options": options, "answer_text": options[letters[ans]]},
                source="mmlu",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# local readers


def _local_gsm8k(data_dir: Path, split: str) -> list[Item]:
    return _conv_gsm8k(read_jsonl(data_path(data_dir, "gsm8k", "gsm8k_test.jsonl")))


def _local_humaneval(data_dir: Path, split: str) -> list[Item]:
    return _conv_humaneval(read_jsonl(data_path(data_dir, "humaneval", "HumanEval.jsonl.gz")))


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
        rows = read_json(data_path(data_dir, "mbpp", "sanitized-mbpp.json"))
    elif variant == "full":
        rows = read_jsonl(data_path(data_dir, "mbpp", "mbpp.jsonl"))
    else:
        raise AlignBeamError(f"mbpp: variant must be 'sanitized' or 'full', got {variant!r}")
    return _conv_mbpp([r for r in rows if _mbpp_split(int(r["task_id"]), split)], variant)


def _local_medqa(data_dir: Path, split: str) -> list[Item]:
    fname = "medqa_us4opt_test.jsonl" if split == "test" else "medqa_us4opt_test_hard.jsonl"
    return _conv_mcq4(read_jsonl(data_path(data_dir, "medqa", fname)), "medqa")


def _local_medmcqa(data_dir: Path, split: str) -> list[Item]:
    return _conv_mcq4(read_jsonl(data_path(data_dir, "medmcqa", "medmcqa_test_medagents.jsonl")), "medmcqa")


def _local_pubmedqa(data_dir: Path, split: str) -> list[Item]:
    """PQA-L; split 'test' keeps the 500 PMIDs of the official test split (test_ground_truth.json)."""
    path = data_path(data_dir, "pubmedqa", "ori_pqal.json")
    data = read_json(path)
    if split == "test":
        truth = read_json(path.with_name("test_ground_truth.json"))
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
    root = data_path(data_dir, "mmlu", split)
    files = {p.name[: -len(f"_{split}.csv")]: p for p in sorted(root.glob(f"*_{split}.csv"))}
    rows: list[dict[str, Any]] = []
    for subj in _mmlu_subjects_filter(subjects, sorted(files)):
        rows.extend({**r, "subject": subj} for r in read_csv(files[subj]))
    return _conv_mmlu(rows)


def _hub_mmlu(rows: Sequence[Mapping[str, Any]], subjects: str | Sequence[str] | None = None) -> list[Item]:
    """cais/mmlu 'all' carries a subject column; filter it like the local per-subject files."""
    keep = set(_mmlu_subjects_filter(subjects, sorted({str(r["subject"]) for r in rows})))
    return _conv_mmlu([r for r in rows if r["subject"] in keep])


# --------------------------------------------------------------------------------------------------------------
# registry entries

_MBPP_HUB = {s: [("sanitized", s)] for s in ("test", "train", "validation", "prompt")}
_MBPP_HUB["all"] = [("sanitized", s) for s in ("prompt", "test", "validation", "train")]

UTILITY_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="gsm8k",
        kind="utility",
        description="GSM8K test, 1319 grade-school maths problems; reference answer = the number after '####'",
        citation="Cobbe et al. (2021). Training Verifiers to Solve Math Word Problems. arXiv:2110.14168",
        license="MIT",
        loader=_local_gsm8k,
        scorer="gsm8k",
        hub=HubSpec("openai/gsm8k", {"all": [("main", "test")]}, _conv_gsm8k),
    ),
    DatasetInfo(
        name="humaneval",
        kind="utility",
        description="HumanEval, 164 Python functions, execution-checked (pass@1)",
        citation="Chen et al. (2021). Evaluating Large Language Models Trained on Code. arXiv:2107.03374",
        license="MIT",
        loader=_local_humaneval,
        scorer="humaneval",
        hub=HubSpec("openai/openai_humaneval", {"all": [(None, "test")]}, _conv_humaneval),
    ),
    DatasetInfo(
        name="mbpp",
        kind="utility",
        description="MBPP sanitized (427; test split = task ids 11-510, 257 tasks), execution-checked; "
        "variant='full' reads the 974-task file",
        citation="Austin et al. (2021). Program Synthesis with Large Language Models. arXiv:2108.07732",
        license="CC-BY-4.0",
        loader=_local_mbpp,
        scorer="mbpp",
        splits=("test", "all", "train", "validation", "prompt"),
        hub=HubSpec("google-research-datasets/mbpp", _MBPP_HUB, lambda rows: _conv_mbpp(rows, "sanitized")),
        extra_sources=("mbpp_full",),
    ),
    DatasetInfo(
        name="medqa",
        kind="utility",
        description="MedQA-USMLE 4-option test (1273; 'hard' = the MedAgentsBench 100)",
        citation="Jin et al. (2021). What Disease does this Patient Have? A Large-scale Open Domain Question "
        "Answering Dataset from Medical Exams. Applied Sciences 11(14), arXiv:2009.13081 (copy via MedAgentsBench)",
        license="MIT",
        loader=_local_medqa,
        scorer="mcq",
        splits=("test", "hard"),
        hub=HubSpec("GBaker/MedQA-USMLE-4-options", {"test": [(None, "test")]}, lambda rows: _conv_mcq4(rows, "medqa")),
    ),
    DatasetInfo(
        name="medmcqa",
        kind="utility",
        description="MedMCQA, MedAgentsBench filtered dev subset (2816)",
        citation="Pal, Umapathi, Sankarasubbu (2022). MedMCQA: A Large-scale Multi-Subject Multi-Choice Dataset "
        "for Medical domain Question Answering. CHIL 2022, arXiv:2203.14371 (MedAgentsBench filtered subset)",
        license="MIT",
        loader=_local_medmcqa,
        scorer="mcq",
    ),
    DatasetInfo(
        name="pubmedqa",
        kind="utility",
        description="PubMedQA PQA-L, yes/no/maybe with the abstract as context (test = the 500 official PMIDs)",
        citation="Jin et al. (2019). PubMedQA: A Dataset for Biomedical Research Question Answering. EMNLP 2019, "
        "arXiv:1909.06146",
        license="MIT",
        loader=_local_pubmedqa,
        scorer="pubmedqa",
        splits=("test", "all"),
        hub=HubSpec("qiaojin/PubMedQA", {"all": [("pqa_labeled", "train")]}, _conv_pubmedqa),
    ),
    DatasetInfo(
        name="mmlu",
        kind="utility",
        description="MMLU, 18 subjects (3346 test / 90 dev); subjects=... filters; category = subject",
        citation="Hendrycks et al. (2021). Measuring Massive Multitask Language Understanding. ICLR 2021, "
        "arXiv:2009.03300",
        license="MIT",
        loader=_local_mmlu,
        scorer="mcq",
        splits=("test", "dev"),
        hub=HubSpec("cais/mmlu", {"test": [("all", "test")], "dev": [("all", "dev")]}, _hub_mmlu),
    ),
)
