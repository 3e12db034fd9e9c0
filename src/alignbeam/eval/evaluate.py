"""`evaluate()`: systems on a benchmark suite or a prompt file, as a library call (`alignbeam eval` wraps it).

Every generation is written as it is made (runner.py), so an interrupted evaluation resumes from what it had
written; the report and the plots are rewritten from all the records of the folder at the end (report.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.engines.remote import RemoteModel
from alignbeam.errors import AlignBeamError
from alignbeam.eval import datasets as D
from alignbeam.eval import grader as G
from alignbeam.eval import report, runner
from alignbeam.eval.systems import Responder
from alignbeam.systems import System, parse_systems

#: progress(stage, done, total): stage is "grader" (the grader against human labels) or a system's name
Progress = Callable[[str, int, int], None]


@dataclass
class Evaluation:
    """What an evaluation wrote: its folder, the per-system summary, every record, and the grader's check."""

    out_dir: Path
    summary: dict[str, dict[str, Any]]
    records: list[dict[str, Any]]
    grader_validation: dict[str, Any] | None = None
    suite: str = ""
    systems: list[str] = field(default_factory=list)


def evaluate(
    ab: AlignBeam,
    systems: Sequence[str | System] = ("draft", "alignbeam"),
    suite: str = "smoke",
    *,
    prompts: str | Path | None = None,
    column: str = "prompt",
    kind: str = "harmful",
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    max_new_tokens: int | None = None,
    seed: int | None = None,
    validate_grader: bool = False,
    allow_unsandboxed: bool = False,
    progress: Progress | None = None,
    about: dict[str, Any] | None = None,
    concurrency: int = 1,
) -> Evaluation:
    """Evaluate `systems` (specs such as "draft", "alignbeam:alpha=0.3|0.6", "recommended", "router") on a
    suite ("smoke", "paper", "full" or a .yaml/.toml file) or on your own `prompts` file (CSV or JSONL, of one
    `kind`: harmful or benign). Writes under `out` (default runs/eval-SUITE); a rerun resumes. `about`: what to
    record of how it was started (the command, the model specs) in the folder's config.json. `concurrency`: answers
    in flight at once, only when every model is on a serving engine (`check_concurrency`); the records are the
    same as one at a time, and `latency_s` is then each answer's own wall time with the others running beside it."""
    check_concurrency(ab, concurrency)
    if kind not in ("harmful", "benign"):
        raise AlignBeamError("kind must be harmful or benign")
    prompts, data_dir = (Path(prompts) if prompts else None), (Path(data_dir) if data_dir else None)
    chosen = [s for spec in systems for s in ([spec] if isinstance(spec, System) else parse_systems([spec]))]
    the_suite, items, lengths = _items(suite, prompts, column, kind, data_dir, max_new_tokens, seed)
    out_dir = Path(out) if out else output_dir(suite, prompts)
    grader = G.RefusalGrader(_grader_model(ab))
    validation = _validate_grader(grader, out_dir, data_dir, progress) if validate_grader else None
    info = {"draft": ab.draft.name, "anchor": ab.anchor.name if ab.anchor else None, **(about or {})}
    runner.write_config(
        out_dir,
        suite=the_suite.name,
        systems=[s.name for s in chosen],
        **info,
        max_new_tokens=lengths,
        seed=the_suite.seed,
        datasets={k: len(v) for k, v in items.items()},
    )
    total, done = len(chosen) * sum(len(v) for v in items.values()), 0

    def advance(name: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(name, done, total)

    responder = Responder(ab, cold=concurrency == 1)
    run_options = dict(on_progress=advance, allow_unsandboxed=allow_unsandboxed, concurrency=concurrency)
    records = runner.run(responder, grader, chosen, items, out_dir, lengths, **run_options)  # type: ignore[arg-type]
    command = str((about or {}).get("command", "alignbeam eval ..."))
    summary = report.write(out_dir, records, f"AlignBeam evaluation: {the_suite.name}", command)
    return Evaluation(out_dir, summary, records, validation, the_suite.name, [s.name for s in chosen])


def check_concurrency(ab: AlignBeam, concurrency: int) -> None:
    """Several answers at once only when every model (draft, anchor, judge, the grader's) is on a serving engine:
    an in-process engine runs one generation at a time and is not thread-safe, so asking for more is an error
    that says so, as `alignbeam serve --concurrency` does."""
    if concurrency < 1:
        raise AlignBeamError(f"concurrency must be 1 or more, got {concurrency}")
    roles = {"draft": ab.draft, "anchor": ab.anchor, "judge": getattr(ab.judge, "model", None)}
    local = [role for role, m in roles.items() if m is not None and not isinstance(m, RemoteModel)]
    if concurrency > 1 and local:
        raise AlignBeamError(
            f"concurrency {concurrency} needs every model on a serving engine, but the {', '.join(local)} run(s) in "
            "this process, where answers are made one at a time: give them as URLs, or use --concurrency 1"
        )


def output_dir(suite: str, prompts: Path | None = None) -> Path:
    """Where an evaluation writes when no folder is given: runs/eval-NAME (the suite's name, or the prompt file's)."""
    return Path("runs") / f"eval-{f'prompts-{prompts.stem}' if prompts is not None else runner.load_suite(suite).name}"


def _items(
    suite: str,
    prompts: Path | None,
    column: str,
    kind: str,
    data_dir: Path | None,
    max_new_tokens: int | None,
    seed: int | None,
) -> tuple[runner.Suite, dict[str, list[D.Item]], dict[str, int]]:
    """The suite, its items per dataset and each dataset's response length."""
    if prompts is not None:
        the_suite = runner.Suite(f"prompts-{prompts.stem}", [], max_new_tokens or 128, seed or 0)
        items = {prompts.stem: D.load_prompt_file(prompts, column, kind)}  # type: ignore[arg-type]
        return the_suite, items, {prompts.stem: max_new_tokens or the_suite.max_new_tokens}
    the_suite = runner.load_suite(suite)
    if seed is not None:
        the_suite.seed = seed
    return the_suite, runner.suite_items(the_suite, data_dir), runner.suite_lengths(the_suite, max_new_tokens)


def _grader_model(ab: AlignBeam):
    model = getattr(ab.judge, "model", None) or ab.anchor
    if model is None:
        raise AlignBeamError("the refusal grader needs a judge or anchor model")
    return model


def _validate_grader(
    grader: G.RefusalGrader, out_dir: Path, data_dir: Path | None, progress: Progress | None
) -> dict[str, Any]:
    """The grader's agreement with the human labels, measured once per folder (a resumed run reads it back)."""
    path = out_dir / "grader_validation.json"
    if path.exists():
        return json.loads(path.read_text())
    folder = data_dir or D.default_data_dir()
    rows = G.load_human_labels(folder)
    val = G.validate(grader, folder, lambda i: progress("grader", i, len(rows)) if progress else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(val, indent=2))
    return val
