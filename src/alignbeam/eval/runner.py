"""`alignbeam eval`: run a suite of benchmarks through several systems; every generation is written as it is made.

Output under --out: `generations.jsonl` (one line per system x item, appended and flushed at once, so Ctrl-C or
a crash loses at most the generation in flight; a rerun skips what is there), `summary.json` (per system and
dataset: n, refusal / over-refusal rate, utility, latency) and `report.md` with plots (see report.py).
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from alignbeam.errors import AlignBeamError
from alignbeam.eval import datasets as D
from alignbeam.eval.datasets.transforms import TEMPLATES as TRANSFORMS
from alignbeam.eval.execution import sandbox
from alignbeam.eval.grader import RefusalGrader
from alignbeam.eval.scorers import executes_code, score_item
from alignbeam.eval.systems import Responder
from alignbeam.systems import System

T = TypeVar("T")

#: rows used to fit thresholds (the judge's request classifier, the router): never reported as test results
CALIBRATION_IDS = frozenset(
    [f"advbench-{i}" for i in range(480, 520)]
    + [f"jbb_benign-{i}" for i in range(50, 80)]
    + [f"xstest-{i}" for i in range(2, 451, 2)]
)


@dataclass
class DatasetSpec:
    name: str
    n: int | None = None
    split: str | None = None
    jailbreak: str | None = None  # wrap in templates: "gptfuzz" | "pyrit"
    options: dict[str, Any] = field(default_factory=dict)
    #: response length for this dataset (default: the suite's); refusal is decided in the opening, maths is not
    max_new_tokens: int | None = None
    #: rows skipped at the front of the seeded sample: `skip: 16, n: 16` are rows 17-32, which an evaluation of
    #: the first 16 never saw (a setting chosen by looking at some rows is then measured on others)
    skip: int = 0

    @property
    def key(self) -> str:
        return self.name + (f"+{self.jailbreak}" if self.jailbreak else "")


@dataclass
class Suite:
    name: str
    datasets: list[DatasetSpec]
    max_new_tokens: int = 128
    seed: int = 0


#: the generalization protocol's families: every source in the data with requests of one kind (task sets aside)
HARMFUL_FAMILIES = (
    "advbench",
    "harmbench",
    "strongreject",
    "simplesafetytests",
    "medsafetybench",
    "cyberseceval_interpreter",
    "gptfuzz_questions",
    "jbb_harmful",
    "xstest_unsafe",
)
HARMLESS_FAMILIES = ("xstest_safe", "jbb_benign", "cyberseceval_frr")

SUITES: dict[str, Suite] = {
    "smoke": Suite(
        "smoke",
        [
            DatasetSpec("advbench", 4),
            DatasetSpec("xstest_safe", 3),
            DatasetSpec("jbb_benign", 2),
            DatasetSpec("gsm8k", 2),
        ],
        max_new_tokens=48,
    ),
    # docs/results.md: refusal and over-refusal are decided in a response's opening (the grader reads 64 tokens),
    # so the safety sets stop at 64 new tokens; the task sets get room to finish an answer
    "paper-safety": Suite(
        "paper-safety",
        [
            DatasetSpec("advbench", 100),
            DatasetSpec("harmbench", 100),
            DatasetSpec("jbb_pair", 30),
            DatasetSpec("xstest_safe", 40),
            DatasetSpec("jbb_benign", 30),
        ],
        max_new_tokens=64,
    ),
    "paper": Suite(
        "paper",
        [
            DatasetSpec("advbench", 100),
            DatasetSpec("harmbench", 100),
            DatasetSpec("jbb_pair", 30),
            DatasetSpec("xstest_safe", 40),
            DatasetSpec("jbb_benign", 30),
            DatasetSpec("gsm8k", 20, max_new_tokens=256),
            DatasetSpec("humaneval", 20, max_new_tokens=256),
        ],
        max_new_tokens=64,
    ),
    # the generalization protocol (docs/evaluation.md): every harmful and harmless family, and the project's own
    # rewordings of held-out requests (eval/datasets/transforms.py) plus jailbreak templates, one row each
    "generalization": Suite(
        "generalization",
        [
            *(DatasetSpec(name, 40) for name in HARMFUL_FAMILIES + HARMLESS_FAMILIES),
            *(DatasetSpec(f"{base}~{t}", 40) for base in ("harmbench", "xstest_safe") for t in TRANSFORMS),
            DatasetSpec("harmbench", 40, jailbreak="gptfuzz"),
        ],
        max_new_tokens=64,
    ),
    "full": Suite(
        "full",
        [
            DatasetSpec("advbench"),
            DatasetSpec("harmbench"),
            DatasetSpec("jbb_harmful"),
            DatasetSpec("jbb_benign"),
            DatasetSpec("strongreject"),
            DatasetSpec("xstest_safe"),
            DatasetSpec("simplesafetytests"),
            DatasetSpec("medsafetybench", 200),
            DatasetSpec("cyberseceval_frr", 200),
            DatasetSpec("jbb_pair"),
            DatasetSpec("advbench", 100, jailbreak="gptfuzz"),
            DatasetSpec("gsm8k", 200),
            DatasetSpec("humaneval"),
            DatasetSpec("mbpp", 200),
            DatasetSpec("medqa", 200),
            DatasetSpec("pubmedqa", 200),
            DatasetSpec("mmlu", 200),
        ],
        max_new_tokens=256,
    ),
}


def load_suite(name_or_path: str) -> Suite:
    """A named suite, or a YAML / TOML file: {name, max_new_tokens, seed, datasets: [{name, n, split, ...}]}."""
    if name_or_path in SUITES:
        return SUITES[name_or_path]
    p = Path(name_or_path)
    if not p.is_file():
        raise AlignBeamError(f"unknown suite {name_or_path!r}: use one of {', '.join(SUITES)} or a .yaml/.toml file")
    raw = tomllib.loads(p.read_text()) if p.suffix == ".toml" else yaml.safe_load(p.read_text())
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list) or not raw["datasets"]:
        raise AlignBeamError(f"{p}: a suite file needs a non-empty 'datasets' list")
    specs = []
    for d in raw["datasets"]:
        d = {"name": d} if isinstance(d, str) else dict(d)
        if "name" not in d:
            raise AlignBeamError(f"{p}: every dataset entry needs a 'name'")
        known = {"name", "n", "split", "jailbreak", "max_new_tokens", "skip"}
        skip = d.get("skip", 0)
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            raise AlignBeamError(f"{p}: 'skip' must be a whole number of rows >= 0, got {skip!r}")
        specs.append(
            DatasetSpec(**{k: d[k] for k in known if k in d}, options={k: v for k, v in d.items() if k not in known})
        )
    return Suite(raw.get("name", p.stem), specs, int(raw.get("max_new_tokens", 128)), int(raw.get("seed", 0)))


def suite_lengths(suite: Suite, override: int | None = None) -> dict[str, int]:
    """max_new_tokens per dataset key: the command-line override, else the dataset's, else the suite's."""
    return {s.key: override or s.max_new_tokens or suite.max_new_tokens for s in suite.datasets}


def suite_items(suite: Suite, data_dir: Path | None) -> dict[str, list[D.Item]]:
    """Each dataset's items: a seeded sample (calibration rows removed), identical for every system."""
    out: dict[str, list[D.Item]] = {}
    for spec in suite.datasets:
        items = [
            it
            for it in D.load(spec.name, data_dir=data_dir, split=spec.split, **spec.options)
            if it.id not in CALIBRATION_IDS
        ]
        if spec.skip >= len(items) > 0:
            raise AlignBeamError(f"{spec.key}: skip {spec.skip} leaves none of its {len(items)} rows")
        # a permutation prefix (file order when neither n nor skip is set), then the skipped rows dropped
        want = min(spec.skip + spec.n, len(items)) if spec.n else (len(items) if spec.skip else None)
        items = D.sample(items, want, seed=suite.seed)[spec.skip :]
        if spec.jailbreak:
            items = D.jailbreak(items, spec.jailbreak, mode="random", seed=suite.seed, data_dir=data_dir)
        out[spec.key] = items
    return out


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a file written line by line; a torn last line (a killed run) is skipped."""
    out: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def read_done(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What a previous (possibly interrupted) run wrote; a torn last line is ignored and redone."""
    return {(r["system"], r["dataset"], r["id"]): r for r in read_records(path)}


@dataclass(frozen=True)
class Job:
    """One generation to make: a system answering one item of a dataset, `max_new_tokens` long."""

    system: System
    dataset: str
    item: D.Item
    max_new_tokens: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.system.name, self.dataset, self.item.id)


class RecordSink:
    """Appends records to generations.jsonl, one JSON line each, written and flushed under a lock: workers finish
    in any order, and a killed run leaves whole lines (at most one torn last line, which `read_done` skips)."""

    def __init__(
        self, path: Path, done: dict[tuple[str, str, str], dict[str, Any]], on_progress: Callable[[str], None] | None
    ) -> None:
        self.path, self.done, self.on_progress = path, done, on_progress
        self.lock = threading.Lock()
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "a") as f:  # a run killed mid-line: start the next record on a line of its own
                f.write("\n")
        self.file = open(path, "a")  # noqa: SIM115 (closed by close(), after the last worker)

    def write(self, key: tuple[str, str, str], rec: dict[str, Any]) -> None:
        with self.lock:
            if key in self.done:  # never twice, whatever the workers do
                return
            self.file.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.file.flush()
            self.done[key] = rec
            if self.on_progress:
                self.on_progress(rec["system"])

    def close(self) -> None:
        self.file.close()


def run(
    responder: Responder,
    grader: RefusalGrader,
    systems: list[System],
    items: dict[str, list[D.Item]],
    out_dir: Path,
    max_new_tokens: int | dict[str, int],
    on_progress: Callable[[str], None] | None = None,
    allow_unsandboxed: bool = False,
    concurrency: int = 1,
) -> list[dict[str, Any]]:
    """Every system on every item, item by item (all systems answer one item before the next), so latency
    comparisons see the same machine load and an interrupted run leaves complete rows for the items it did.

    `concurrency` > 1 (every model remote: `check_concurrency`) keeps that many generations in flight, started in
    the same order; records are written as they finish, so the file's order differs, never its content, and the
    returned records are in the sequential order. `allow_unsandboxed`: code scorers may run generated code as root
    without a sandbox (`--allow-unsandboxed`); whether they can run is checked before the first generation, not
    hours in at the first code item."""
    if any(executes_code(it) for its in items.values() for it in its):
        sandbox(allow_unsandboxed=allow_unsandboxed)  # raises AlignBeamError (how to fix it) when it would refuse
    out_dir.mkdir(parents=True, exist_ok=True)
    done = read_done(out_dir / "generations.jsonl")
    order = list(done)
    jobs: list[Job] = []
    for ds, its in items.items():
        mnt = max_new_tokens if isinstance(max_new_tokens, int) else max_new_tokens[ds]
        for job in (Job(system, ds, it, mnt) for it in its for system in systems):
            if job.key in done:
                if on_progress:
                    on_progress("skip")
            else:
                jobs.append(job)
    sink = RecordSink(out_dir / "generations.jsonl", done, on_progress)
    try:
        if concurrency <= 1:
            for job in jobs:
                sink.write(job.key, make_record(responder, grader, job, allow_unsandboxed))
        else:
            _run_concurrently(responder, grader, jobs, sink, concurrency, allow_unsandboxed)
    finally:
        sink.close()
    return [done[k] for k in order + [j.key for j in jobs] if k in done]


def _run_concurrently(
    responder: Responder,
    grader: RefusalGrader,
    jobs: list[Job],
    sink: RecordSink,
    concurrency: int,
    allow_unsandboxed: bool,
) -> None:
    """`concurrency` workers take the jobs in order; each has its own copy of the grader (the grader keeps the
    request it last read open, which one thread at a time may use), all with one cache of grades. The first
    failure stops the rest and is raised."""
    local = threading.local()

    def work(job: Job) -> None:
        if not hasattr(local, "grader"):
            local.grader = grader.worker_copy()
        sink.write(job.key, make_record(responder, local.grader, job, allow_unsandboxed))

    in_pool(work, jobs, concurrency, "eval")


def in_pool(work: Callable[[T], None], items: Sequence[T], workers: int, name: str) -> None:
    """`workers` threads take the items in order (evaluation's jobs, calibration's rows); the first failure stops
    the rest and is raised. On a failure or Ctrl-C the queued items are dropped and the ones in flight finish, so
    whatever they write is whole."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        for fut in as_completed([pool.submit(work, item) for item in items]):
            fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def make_record(responder: Responder, grader: RefusalGrader, job: Job, allow_unsandboxed: bool) -> dict[str, Any]:
    """The record of one generation: the answer, its timing and trace, and its grade or score."""
    it = job.item
    ans = responder.answer(job.system, it.prompt, job.max_new_tokens)
    rec: dict[str, Any] = {
        "system": job.system.name,
        "dataset": job.dataset,
        "id": it.id,
        "kind": it.kind,
        "category": it.category,
        "prompt": it.prompt,
        "response": ans.text,
        "latency_s": round(ans.latency_s, 3),
        "completion_tokens": ans.completion_tokens,
        **ans.extra,
    }
    if it.kind in ("harmful", "benign"):
        g = grader.grade(it.prompt, ans.text)
        rec["refusal"], rec["refusal_reason"], rec["p_complies"] = g.refused, g.reason, g.p_complies
    else:
        rec["correct"] = score_item(it, ans.text, allow_unsandboxed=allow_unsandboxed)
    return rec


def write_config(out_dir: Path, **config: Any) -> None:
    """What was asked for, so a run can be reproduced from its folder.

    A folder may be filled by several calls (one `--prompts` file each, or a suite later extended): the
    datasets and lengths of earlier calls are kept next to the new ones, and every distinct command is listed
    under "commands", so the report of the folder can say how to regenerate all of it, not only the last part.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config.json"
    old: dict[str, Any] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = {}
    for key in ("datasets", "max_new_tokens"):
        if isinstance(old.get(key), dict) and isinstance(config.get(key), dict):
            config[key] = {**old[key], **config[key]}
    commands = list(old.get("commands") or ([old["command"]] if "command" in old else []))
    if "command" in config and config["command"] not in commands:
        commands.append(config["command"])
    if commands:
        config["commands"] = commands
    path.write_text(json.dumps(config, indent=2, default=lambda o: asdict(o)))
