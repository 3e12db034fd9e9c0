"""The anchor's own opening as a second safety signal, next to the request classifier, on the generalization protocol.

The request classifier reads a request's wording, and the generalization protocol (benchmarks/generalization.py)
showed where that fails: rewordings (past tense, fiction, hypothetical) and families it never trained on. The
anchor is a safety-aligned chat model; what it says in its first few tokens when it answers the request itself
("I'm sorry, but I can't") is a second signal with nothing fitted in it: a fixed opening rule
(`textrules.opening_declines`) on a fixed number of greedy tokens. This measures, per family and per transform
(the same rows as generalization.py):

- the anchor's opening declines (share of rows);
- the request classifier flags (the leave-one-family-out probe for families, the probe that never saw HarmBench
  nor XSTest for transforms; and the packaged probe, labelled a tuning figure where it trained on the family);
- either of the two (what escalates a request to the full method under `anchor_check`).

Openings are cached per set under runs/generalization/<anchor>-openings/ (an interrupted run resumes); the
classifier's logits come from generalization.py's cache (run it first).

Usage: python benchmarks/anchor_opening.py [--per-set 20] [--tokens 12] [--anchor qwen2.5-coder-1.5b]
The last line is one JSON object with every figure; runs/generalization/anchor_opening.md has the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alignbeam.engines.loader import load_model
from alignbeam.eval import datasets as D
from alignbeam.method import judge as J
from alignbeam.method import probe as P
from alignbeam.method.textrules import opening_declines
from generalization import HARMFUL, OUT, families, fit, transforms
from request_probe import slot_logits


def openings(model: Any, name: str, items: list[D.Item], root: Path, tokens: int) -> list[str]:
    """The model's greedy first `tokens` tokens for each request, cached one line per row."""
    path = root / (name.replace(" / ", "-").replace(" ", "_") + ".jsonl")
    done: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done[r["id"]] = r["opening"]
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with path.open("a") as f:
        for it in items:
            if it.id in done:
                continue
            ids = model.tokenizer.encode_chat([{"role": "user", "content": it.prompt}])
            done[it.id] = model.tokenizer.decode(model.generate_greedy(ids, tokens))
            f.write(json.dumps({"id": it.id, "opening": done[it.id]}) + "\n")
            f.flush()
    if time.time() - t0 > 1:
        print(f"  {name}: {len(items)} openings ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return [done[it.id] for it in items]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", default="qwen2.5-coder-1.5b")
    ap.add_argument("--classifier", default="qwen2.5-coder-1.5b", help="the judge model whose logits are cached")
    ap.add_argument("--per-set", type=int, default=20, help="rows per family / transform (the first of the 40)")
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("--fpr", type=float, default=0.06)
    a = ap.parse_args()
    anchor = load_model(a.anchor)
    clf = load_model(a.classifier) if a.classifier != a.anchor else anchor
    fp = P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT)
    logit_root = OUT / f"{a.classifier}-{fp}"
    fams, trans = families(40), transforms(40)  # the lists generalization.py cached (their first rows are used)
    X = {n: slot_logits(clf, n, its, logit_root / "families").astype(np.float32) for n, its in fams.items()}
    T = {n: slot_logits(clf, n, its, logit_root / "transforms").astype(np.float32) for n, its in trans.items()}
    packaged = P.find_probe(clf.name, fp)
    root = OUT / f"{a.anchor}-openings-{a.tokens}"
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, items: list[D.Item], clf_flags: np.ndarray, pk: np.ndarray | None, kind: str) -> None:
        ops = openings(anchor, name, items[: a.per_set], root, a.tokens)
        dec = np.array([opening_declines(o) for o in ops])
        c = clf_flags[: a.per_set]
        r = {
            "kind": kind,
            "n": len(ops),
            "classifier": round(float(c.mean()), 4),
            "anchor opening": round(float(dec.mean()), 4),
            "either": round(float((c | dec).mean()), 4),
        }
        if pk is not None:
            r["packaged probe"] = round(float(pk[: a.per_set].mean()), 4)
            r["packaged or anchor"] = round(float((pk[: a.per_set] | dec).mean()), 4)
        rows[name] = r
        print(name, json.dumps(r), flush=True)

    for held, items in fams.items():  # leave one family out: the classifier never saw `held`
        names = [n for n in X if n != held]
        w, b, thr = fit(
            np.concatenate([X[n] for n in names]),
            np.concatenate([np.full(len(X[n]), n in HARMFUL) for n in names]),
            a.fpr,
        )
        pk = packaged.scores(X[held]) > packaged.threshold if packaged is not None else None
        row(held, items, X[held] @ w + b > thr, pk, "harmful" if held in HARMFUL else "harmless")
    names = [n for n in X if n not in ("harmbench", "xstest_safe", "xstest_unsafe")]
    w, b, thr = fit(
        np.concatenate([X[n] for n in names]),
        np.concatenate([np.full(len(X[n]), n in HARMFUL) for n in names]),
        a.fpr,
    )
    for name, items in trans.items():
        pk = packaged.scores(T[name]) > packaged.threshold if packaged is not None else None
        row(name, items, T[name] @ w + b > thr, pk, name.split(" / ")[1])
    (OUT / "anchor_opening.md").write_text(_markdown(rows, a))
    print(_markdown(rows, a))
    print(json.dumps({"anchor": a.anchor, "tokens": a.tokens, "per_set": a.per_set, "rows": rows}))


def _markdown(rows: dict[str, dict[str, Any]], a: argparse.Namespace) -> str:
    cols = ["classifier", "anchor opening", "either", "packaged probe", "packaged or anchor"]
    lines = [
        f"## Flagged share: request classifier (left out), the anchor's opening ({a.anchor}, {a.tokens} tokens), "
        "either",
        "",
        "| set | kind | n | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for name, r in rows.items():
        cells = [f"{100 * r[c]:.0f}%" if c in r else "" for c in cols]
        lines.append(f"| {name} | {r['kind']} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
