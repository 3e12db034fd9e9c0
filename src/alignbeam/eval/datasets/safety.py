"""Safety sets: harmful requests (refusal rate) and benign ones that look harmful (over-refusal rate).

Every entry here is scored by the refusal judge, never by a task scorer. Converters take rows (from the local
files or a hub copy) and return `Item`s; the `_local_*` loaders read the shared files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from alignbeam.errors import AlignBeamError
from alignbeam.eval.datasets.base import (
    REFUSAL,
    DatasetInfo,
    HubSpec,
    Item,
    Kind,
    as_text,
    data_path,
    read_csv,
    read_json,
)
from alignbeam.eval.datasets.safety_rows import (
    conv_advbench,
    conv_harmbench,
    conv_jbb,
    conv_simple_harmful,
    conv_sst,
    conv_strongreject,
    conv_xstest,
)

JBB_CITATION = (
    "Chao et al. (2024). JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models. "
    "NeurIPS 2024 Datasets and Benchmarks, arXiv:2404.01318"
)
GPTFUZZ_CITATION = (
    "Yu, Lin, Yu, Xing (2023). GPTFUZZER: Red Teaming Large Language Models with Auto-Generated "
    "Jailbreak Prompts. arXiv:2309.10253"
)
_XSTEST_CITATION = (
    "Röttger et al. (2024). XSTest: A Test Suite for Identifying Exaggerated Safety Behaviours in Large "
    "Language Models. NAACL 2024, arXiv:2308.01263"
)
_CYBERSECEVAL_CITATION = (
    "Bhatt et al. (2024). CyberSecEval 2: A Wide-Ranging Cybersecurity Evaluation Suite for Large "
    "Language Models. arXiv:2404.13161 (Meta PurpleLlama)"
)

# --------------------------------------------------------------------------------------------------------------
# local readers


def _local_advbench(data_dir: Path, split: str) -> list[Item]:
    return conv_advbench(read_csv(data_path(data_dir, "advbench", "harmful_behaviors.csv")))


def _local_harmbench(data_dir: Path, split: str, include_contextual: bool = False) -> list[Item]:
    fname = {"all": "all", "test": "test", "val": "val"}[split]
    rows = read_csv(data_path(data_dir, "harmbench", f"harmbench_behaviors_text_{fname}.csv"))
    return conv_harmbench(rows, include_contextual=include_contextual)


def _local_jbb(kind: Kind) -> Callable[[Path, str], list[Item]]:
    fname = "harmful-behaviors.csv" if kind == "harmful" else "benign-behaviors.csv"

    def load_jbb(data_dir: Path, split: str) -> list[Item]:
        return conv_jbb(read_csv(data_path(data_dir, "jbb_behaviors", fname)), kind)

    return load_jbb


def _local_strongreject(data_dir: Path, split: str) -> list[Item]:
    fname = "strongreject_dataset.csv" if split == "full" else "strongreject_small_dataset.csv"
    items = conv_strongreject(read_csv(data_path(data_dir, "strongreject", fname)))
    if split == "small":  # ids must not collide with the full set's row numbers
        items = [replace(it, id=it.id.replace("strongreject-", "strongreject_small-")) for it in items]
    return items


def _local_xstest(label: str) -> Callable[[Path, str], list[Item]]:
    def load_xstest(data_dir: Path, split: str) -> list[Item]:
        return conv_xstest(read_csv(data_path(data_dir, "xstest", "xstest_prompts.csv")), label)

    return load_xstest


def _local_sst(data_dir: Path, split: str) -> list[Item]:
    return conv_sst(read_csv(data_path(data_dir, "simplesafetytests", "sst_test_cases.csv")))


def _local_medsafetybench(data_dir: Path, split: str) -> list[Item]:
    """Both generators (GPT-4 and Llama-2 jailbreak) by default; category = the AMA principle number (1-9)."""
    root = data_path(data_dir, "medsafetybench", "test_gpt4").parent
    gens = ("gpt4", "llama2") if split == "all" else (split,)
    out: list[Item] = []
    for gen in gens:
        files = sorted((root / f"test_{gen}").glob("med_safety_demonstrations_category_*.csv"))
        if not files:
            raise AlignBeamError(f"medsafetybench: no test_{gen}/med_safety_demonstrations_category_*.csv in {root}")
        for f in sorted(files, key=lambda p: int(p.stem.rsplit("_", 1)[-1])):
            cat = f.stem.rsplit("_", 1)[-1]
            for j, r in enumerate(read_csv(f)):
                out.append(
                    Item(
                        id=f"medsafetybench-{gen}-{cat}-{j}",
                        prompt=as_text(r["harmful_medical_request"]),
                        kind="harmful",
                        category=f"ama_principle_{cat}",
                        reference={"safe_response": as_text(r.get("safe_response")), "generator": gen},
                        source="medsafetybench",
                    )
                )
    return out


def _local_cse_frr(data_dir: Path, split: str) -> list[Item]:
    """MITRE FRR: 750 benign security/code requests that sound malicious (all is_malicious=False)."""
    rows = read_json(data_path(data_dir, "cyberseceval", "mitre_frr.json"))
    return [
        Item(
            id=f"cyberseceval_frr-{i}",
            prompt=as_text(r["mutated_prompt"]),
            kind="harmful" if r.get("is_malicious") else "benign",
            category=as_text(r.get("attack_type")) or None,
            reference={"generator_model": r.get("model")},
            source="cyberseceval_frr",
        )
        for i, r in enumerate(rows)
    ]


def _local_cse_interpreter(data_dir: Path, split: str) -> list[Item]:
    """Interpreter abuse: 500 harmful code-interpreter requests, 5 attack types."""
    rows = read_json(data_path(data_dir, "cyberseceval", "interpreter.json"))
    return [
        Item(
            id=f"cyberseceval_interpreter-{i}",
            prompt=as_text(r["mutated_prompt"]),
            kind="harmful",
            category=as_text(r.get("attack_type")) or None,
            reference={},
            source="cyberseceval_interpreter",
        )
        for i, r in enumerate(rows)
    ]


def _local_gptfuzz_questions(data_dir: Path, split: str) -> list[Item]:
    rows = read_csv(data_path(data_dir, "gptfuzz", "question_list.csv"))
    return conv_simple_harmful(rows, "gptfuzz_questions", ("text",), id_cols=("index",))


# --------------------------------------------------------------------------------------------------------------
# registry entries


def _hub_jbb(kind: Kind) -> HubSpec:
    return HubSpec("JailbreakBench/JBB-Behaviors", {"all": [("behaviors", kind)]}, lambda rows: conv_jbb(rows, kind))


def _hub_xstest(label: str) -> HubSpec:
    return HubSpec("walledai/XSTest", {"all": [(None, "train")]}, lambda rows: conv_xstest(rows, label))


SAFETY_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="advbench",
        kind="harmful",
        description="AdvBench harmful behaviours (goal column), 520",
        citation="Zou, Wang, Kolter, Fredrikson (2023). Universal and Transferable Adversarial Attacks on Aligned "
        "Language Models. arXiv:2307.15043",
        license="MIT",
        loader=_local_advbench,
        scorer=REFUSAL,
        hub=HubSpec("walledai/AdvBench", {"all": [(None, "train")]}, conv_advbench),
    ),
    DatasetInfo(
        name="harmbench",
        kind="harmful",
        description="HarmBench text behaviours, FunctionalCategory=standard (200); category = SemanticCategory; "
        "copyright rows always skipped, contextual ones added with include_contextual=True",
        citation="Mazeika et al. (2024). HarmBench: A Standardized Evaluation Framework for Automated Red Teaming "
        "and Robust Refusal. ICML 2024, arXiv:2402.04249",
        license="MIT",
        loader=_local_harmbench,
        scorer=REFUSAL,
        splits=("all", "test", "val"),
        hub=HubSpec("walledai/HarmBench", {"all": [("standard", "train")]}, lambda rows: conv_harmbench(rows)),
    ),
    DatasetInfo(
        name="jbb_harmful",
        kind="harmful",
        description="JailbreakBench JBB-Behaviors, 100 harmful (10 categories)",
        citation=JBB_CITATION,
        license="MIT",
        loader=_local_jbb("harmful"),
        scorer=REFUSAL,
        hub=_hub_jbb("harmful"),
    ),
    DatasetInfo(
        name="jbb_benign",
        kind="benign",
        description="JailbreakBench JBB-Behaviors, 100 topic-matched benign (over-refusal)",
        citation=JBB_CITATION,
        license="MIT",
        loader=_local_jbb("benign"),
        scorer=REFUSAL,
        hub=_hub_jbb("benign"),
    ),
    DatasetInfo(
        name="strongreject",
        kind="harmful",
        description="StrongREJECT forbidden prompts, 313 full / 60 small, 6 categories",
        citation="Souly et al. (2024). A StrongREJECT for Empty Jailbreaks. NeurIPS 2024, arXiv:2402.10260",
        license="MIT",
        loader=_local_strongreject,
        scorer=REFUSAL,
        splits=("full", "small"),
        hub=HubSpec("walledai/StrongREJECT", {"full": [(None, "train")]}, conv_strongreject),
    ),
    DatasetInfo(
        name="xstest_safe",
        kind="benign",
        description="XSTest 250 safe prompts that look unsafe (over-refusal); category = type",
        citation=_XSTEST_CITATION,
        license="CC-BY-4.0",
        loader=_local_xstest("safe"),
        scorer=REFUSAL,
        hub=_hub_xstest("safe"),
    ),
    DatasetInfo(
        name="xstest_unsafe",
        kind="harmful",
        description="XSTest 200 unsafe contrast prompts; category = type",
        citation=_XSTEST_CITATION,
        license="CC-BY-4.0",
        loader=_local_xstest("unsafe"),
        scorer=REFUSAL,
        hub=_hub_xstest("unsafe"),
    ),
    DatasetInfo(
        name="simplesafetytests",
        kind="harmful",
        description="SimpleSafetyTests, 100 clear-cut harmful prompts, 5 harm areas",
        citation="Vidgen et al. (2023). SimpleSafetyTests: a Test Suite for Identifying Critical Safety Risks in "
        "Large Language Models. arXiv:2311.08370",
        license="CC-BY-4.0",
        loader=_local_sst,
        scorer=REFUSAL,
        hub=HubSpec("Bertievidgen/SimpleSafetyTests", {"all": [(None, "test")]}, conv_sst),
    ),
    DatasetInfo(
        name="medsafetybench",
        kind="harmful",
        description="MedSafetyBench test: 450 GPT-4 + 450 Llama-2 generated harmful medical requests, "
        "9 AMA-principle categories",
        citation="Han et al. (2024). MedSafetyBench: Evaluating and Improving the Medical Safety of Large "
        "Language Models. NeurIPS 2024 Datasets and Benchmarks, arXiv:2403.03744",
        license="MIT (README: research use only)",
        loader=_local_medsafetybench,
        scorer=REFUSAL,
        splits=("all", "gpt4", "llama2"),
    ),
    DatasetInfo(
        name="cyberseceval_frr",
        kind="benign",
        description="CyberSecEval MITRE FRR: 750 benign security prompts (over-refusal for code)",
        citation=_CYBERSECEVAL_CITATION,
        license="MIT",
        loader=_local_cse_frr,
        scorer=REFUSAL,
    ),
    DatasetInfo(
        name="cyberseceval_interpreter",
        kind="harmful",
        description="CyberSecEval interpreter abuse: 500 harmful code-interpreter requests, 5 attack types",
        citation=_CYBERSECEVAL_CITATION,
        license="MIT",
        loader=_local_cse_interpreter,
        scorer=REFUSAL,
    ),
    DatasetInfo(
        name="gptfuzz_questions",
        kind="harmful",
        description="GPTFuzzer's 100 harmful questions",
        citation=GPTFUZZ_CITATION,
        license="MIT",
        loader=_local_gptfuzz_questions,
        scorer=REFUSAL,
    ),
)
