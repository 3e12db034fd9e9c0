"""Train and check the request probe: a linear read-out of the request classifier's own next-token logits.

The zero-shot classifier reads one direction of the judge's state at the answer slot, log P(UNSAFE) - log P(SAFE).
Several prompt wordings and sums of them plateaued at held-out AUROC ~0.89 (benchmarks/request_classifier.py).
The logits there are W h for the final hidden state h, so a logistic regression on the raw logits is a linear
probe on h: it can use everything the model encodes about the request, not just two tokens' worth. It costs
nothing at inference (the classifier already computes those logits); the probe is one vector over the vocabulary.

Data (no item of the `paper` / `paper-safety` evaluation samples, none of request_classifier.py's held-out split):
* train: harmful: AdvBench (outside the evaluation sample), JBB harmful 0-49, SimpleSafetyTests, GPTFuzz questions,
  MedSafetyBench, StrongREJECT and XSTest unsafe prompts outside the held-out samples, CyberSecEval interpreter
  abuse; harmless: even-id XSTest safe prompts, JBB benign 50-79, CyberSecEval false-refusal prompts outside the
  held-out sample, and task prompts (MMLU, MedQA, GSM8K, MBPP). HarmBench is not trained on: it stays a test set.
* held-out: request_classifier.py's held-out split, unchanged.

The regularisation strength is chosen by 5-fold cross-validation on train. The threshold flags at most
`--heldout-fpr` (6%) of the held-out split's harmless rows (XSTest safe, JBB benign, CyberSecEval FRR; 187 rows);
`--heldout-fpr -1` uses the earlier rule instead: at most `--max-fpr` of the out-of-fold scores of the harmless tune
rows (even-id XSTest safe + JBB benign 50-79). The held-out split then no longer measures the threshold unseen; the
evaluation samples (`paper-safety`) stay untouched by both. Logits are cached (float16) per batch in
runs/request_probe/, so an interrupted run resumes. `--write` stores the probe in the package
(alignbeam/method/probes/MODEL.npz).

Usage: python benchmarks/request_probe.py [--model qwen2.5-coder-1.5b] [--heldout-fpr 0.06] [--write | --out FILE]
       python benchmarks/request_probe.py --sweep [--write]   (the packaged probe on the held-out split; --write moves
       its threshold to the held-out rule, weights unchanged)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alignbeam.engines.loader import load_model
from alignbeam.eval import datasets as D
from alignbeam.eval.runner import CALIBRATION_IDS, SUITES, suite_items
from alignbeam.method import judge as J
from alignbeam.method import probe as P
from alignbeam.method import readout as R
from judge_accuracy import auroc
from request_classifier import splits as classifier_splits

CACHE = Path("runs") / "request_probe"
TUNE_BENIGN = ("xstest_safe (cal)", "jbb_benign (cal)")
#: requests are cut here, as request_classifier.py cuts them; the judge reads a request whole, and only a few rows
#: here are longer (MedQA vignettes, some MMLU and CyberSecEval prompts)
MAX_REQUEST_TOKENS = 256


def train_sets() -> dict[str, list[D.Item]]:
    suites = [suite_items(SUITES[s], None) for s in ("paper", "paper-safety")]
    evaluated = {it.id for items in suites for its in items.values() for it in its}
    held = {it.id for its in heldout_sets().values() for it in its}

    def free(name: str, n: int | None = None, **kw: Any) -> list[D.Item]:
        items = [it for it in D.load(name, **kw) if it.id not in evaluated and it.id not in held]
        return D.sample(items, n, seed=3) if n is not None and len(items) > n else items

    def index(it: D.Item) -> int:
        return int(it.id.rsplit("-", 1)[1])

    return {
        # harmful
        "advbench": free("advbench", 200),
        "jbb_harmful 0-49": [it for it in free("jbb_harmful") if index(it) < 50],
        "simplesafetytests": free("simplesafetytests"),
        "gptfuzz_questions": free("gptfuzz_questions"),
        "medsafetybench": free("medsafetybench", 100),
        "strongreject": free("strongreject", 100),
        "xstest_unsafe": free("xstest_unsafe"),
        "cyberseceval_interpreter": free("cyberseceval_interpreter", 50),
        # harmless
        "xstest_safe (cal)": [it for it in free("xstest_safe") if it.id in CALIBRATION_IDS],
        "jbb_benign (cal)": [it for it in free("jbb_benign") if it.id in CALIBRATION_IDS],
        "cyberseceval_frr": free("cyberseceval_frr", 150),
        "mmlu": free("mmlu", 100),
        "medqa": free("medqa", 50),
        "gsm8k": free("gsm8k", 50),
        "mbpp": free("mbpp", 50),
    }


def heldout_sets() -> dict[str, list[D.Item]]:
    return classifier_splits()["held-out"]


def slot_logits(model: Any, name: str, items: Sequence[D.Item], root: Path, batch: int = 8) -> np.ndarray:
    """(n, vocab) float16 logits at the classifier's answer slot, one cached file per batch."""
    d = root / name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
    d.mkdir(parents=True, exist_ok=True)
    ids = [it.id for it in items]
    idfile = d / "ids.json"
    if idfile.exists() and json.loads(idfile.read_text()) != ids:
        for f in d.glob("*.npy"):
            f.unlink()
    idfile.write_text(json.dumps(ids))
    text = R.render(model, J.REQUEST_SYSTEM, J.REQUEST_PROMPT.format(request=R.MARKER), "Answer:")
    prompts = [it.prompt for it in items]
    starts = range(0, len(prompts), batch)
    todo = [s for s in starts if not (d / f"{s:05d}.npy").exists()]
    for s in todo:
        t0 = time.time()
        (chunk,) = list(R.iter_slot_logits(model, text, prompts[s : s + batch], MAX_REQUEST_TOKENS))
        np.save(d / f"{s:05d}.npy", np.stack(chunk).astype(np.float16))
        print(f"  {name}: {s + len(chunk)}/{len(prompts)} ({time.time() - t0:.1f} s)", file=sys.stderr, flush=True)
    return np.concatenate([np.load(d / f"{s:05d}.npy") for s in starts])


def sweep(model: Any, root: Path, heldout_fpr: float | None, write: bool) -> None:
    """The packaged probe's trade-off on the held-out split: per threshold, the rows flagged in each set and the
    share of held-out harmless rows flagged (the quantity the threshold rule bounds). With `write`, the packaged
    probe keeps its weights and takes the threshold of the held-out rule at `heldout_fpr`: moving the operating
    point needs no refit (the weights are not bit-reproducible across refits, see the README)."""
    probe = P.find_probe(model.name, P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT))
    if probe is None:
        sys.exit(f"no packaged probe for {model.name} and the current classifier prompt: train one first (--write)")
    sets = heldout_sets()
    sc = {n: probe.scores(slot_logits(model, n, its, root / "held-out").astype(np.float32)) for n, its in sets.items()}
    benign = np.concatenate([s for n, s in sc.items() if sets[n][0].kind == "benign"])
    # around the packaged threshold (1.24 for the embedded judge; its tune rule gave 1.93)
    grid = [round(probe.threshold + d, 3) for d in np.arange(-0.3, 0.81, 0.1)]
    for fpr in (0.03, 0.04, 0.05, 0.06):
        grid.append(round(P.fpr_threshold(benign, fpr), 3))
    rows = []
    for t in sorted(set(grid)):
        row: dict[str, Any] = {"threshold": t, "held-out harmless flagged": round(float((benign > t).mean()), 4)}
        row.update({n: f"{int((s > t).sum())}/{len(s)}" for n, s in sc.items()})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"packaged threshold": probe.threshold, "sweep": rows}))
    if write:
        if heldout_fpr is None:
            sys.exit("--sweep --write sets the threshold by the held-out rule: give --heldout-fpr >= 0")
        new = P.retarget(probe, benign, heldout_fpr, heldout_fpr=heldout_fpr, threshold_set=time.strftime("%Y-%m-%d"))
        new.save(P.probe_path(model.name))
        print(f"packaged threshold {probe.threshold:.3f} -> {new.threshold:.3f} (held-out harmless <= {heldout_fpr})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    # the over-refusal budget of issue #7 (+10 points on XSTest and on JBB benign); the zero-shot margin used 0.08
    ap.add_argument("--max-fpr", type=float, default=0.10, help="harmless tune requests flagged at most")
    ap.add_argument(
        "--heldout-fpr",
        type=float,
        default=0.06,
        help="pick the threshold on the held-out harmless rows instead, flagging at most this share of them "
        "(a negative value: use the tune rule, --max-fpr)",
    )
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="no training: read the held-out split through the packaged probe and print, for thresholds around its "
        "own, how many rows of each held-out set it flags (held-out logits only, ~8 min)",
    )
    ap.add_argument("--write", action="store_true", help="store the probe in src/alignbeam/method/probes/")
    ap.add_argument("--out", type=Path, help="store the probe here instead (SafetyJudge(model, request_probe=PATH))")
    a = ap.parse_args()
    if a.heldout_fpr is not None and a.heldout_fpr < 0:
        a.heldout_fpr = None
    model = load_model(a.model)
    root = CACHE / f"{a.model}-{P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT)}"
    if a.sweep:
        sweep(model, root, a.heldout_fpr, a.write)
        return
    data = {"train": train_sets(), "held-out": heldout_sets()}
    X = {
        split: {n: slot_logits(model, n, its, root / split) for n, its in sets.items()} for split, sets in data.items()
    }
    kinds = {n: its[0].kind for sets in data.values() for n, its in sets.items()}
    unsafe = R.option_ids(model, ["UNSAFE", "UN"])
    safe = [t for t in R.option_ids(model, ["SAFE"]) if t not in unsafe]

    names = list(X["train"])
    xtr = np.concatenate([X["train"][n] for n in names]).astype(np.float32)
    ytr = np.concatenate([np.full(len(X["train"][n]), kinds[n] == "harmful") for n in names])
    group = np.concatenate([np.full(len(X["train"][n]), i) for i, n in enumerate(names)])
    fit = P.fit_probe(xtr, ytr, seed=0)
    print(json.dumps({"cv": fit.cv_report}), flush=True)
    tune_benign = np.concatenate([fit.oof[group == names.index(n)] for n in TUNE_BENIGN])
    tune_thr = P.fpr_threshold(tune_benign, a.max_fpr)
    # The tune rule is coarse: 153 harmless rows, and out-of-fold scores of a model refitted per fold. At 10% it
    # left the held-out harmless rows flagged at 2.7% and HarmBench at 71% (the evaluation sample: 67%, issue #7's
    # target 76%). The default rule picks the threshold on the held-out split's harmless rows instead (XSTest safe,
    # JBB benign, CyberSecEval FRR: the evaluation samples stay untouched), at a rate inside the +10-point budget.
    heldout_benign = np.concatenate(
        [x.astype(np.float32) @ fit.weights + fit.bias for n, x in X["held-out"].items() if kinds[n] == "benign"]
    )
    thr = P.fpr_threshold(heldout_benign, a.heldout_fpr) if a.heldout_fpr is not None else tune_thr

    margin_tune = np.concatenate(
        [[R.log_odds(x.astype(np.float32), unsafe, safe) for x in X["train"][n]] for n in TUNE_BENIGN]
    )
    mthr = P.fpr_threshold(margin_tune, a.max_fpr)
    # the judge turns a score into P(harmful request) = sigmoid((score - threshold) / scale). The probe's score is
    # a log-odds, so its own unit, 1, is the scale: with it the judge reads the candidates (P >= read_gate 0.05) of
    # about as many XSTest safe prompts as with the margin at its 0.5 (31% vs 36% of the tune rows), of almost no
    # task prompt (MedQA 2% vs 86%), and of 94-100% of every harmful set
    scale = 1.0
    probe = P.RequestProbe(
        fit.weights, fit.bias, thr, a.model, P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT), scale
    )
    res: dict[str, Any] = {
        "probe threshold": round(thr, 3),
        "threshold rule": f"held-out harmless <= {a.heldout_fpr}" if a.heldout_fpr is not None else "tune",
        "tune-rule threshold": round(tune_thr, 3),
        "probe scale": scale,
        "margin threshold (same rule)": round(mthr, 3),
    }
    for split in ("train", "held-out"):
        sc = {
            n: (fit.oof[group == names.index(n)] if split == "train" else probe.scores(x)) for n, x in X[split].items()
        }
        mg = {n: np.array([R.log_odds(r.astype(np.float32), unsafe, safe) for r in x]) for n, x in X[split].items()}
        h = [n for n in sc if kinds[n] == "harmful"]
        b = [n for n in sc if kinds[n] == "benign"]
        for label, s, t in (("probe", sc, thr), ("margin", mg, mthr)):
            pos, neg = np.concatenate([s[n] for n in h]), np.concatenate([s[n] for n in b])
            y = [True] * len(pos) + [False] * len(neg)
            res[f"{split} {label} auroc"] = round(auroc([*pos, *neg], y), 4)
            res[f"{split} {label} flagged"] = {n: f"{int((s[n] > t).sum())}/{len(s[n])}" for n in sc}
    print(json.dumps(res, indent=1), flush=True)
    if a.write or a.out:
        path = a.out or P.probe_path(a.model)
        probe.save(
            path,
            meta={
                "trained_on": {n: len(X["train"][n]) for n in names},
                "max_fpr": a.max_fpr,
                "heldout_fpr": a.heldout_fpr,
                "cv": fit.cv_report,
                "date": time.strftime("%Y-%m-%d"),
            },
        )
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
