"""The vocabulary bridge: the anchor's top-B next-token distribution, re-expressed over the draft's vocabulary.

Each anchor token's text is re-encoded with the draft tokenizer. Doing that per step would cost B encode calls,
so a per-pair table is built once (and cached on disk, keyed by both tokenizers' fingerprints): for every
anchor id, the draft id its context-free text maps to exactly (or -1), and the first draft id of its
re-encoding. A step is then a handful of numpy gathers. Only tokens whose text depends on context (byte-fallback
pieces and other partial UTF-8, marked in the table) are decoded in context: text(a) = decode(resp + [a]) -
decode(resp). The anchor's end-of-generation tokens map to the draft's end-of-turn token; other special tokens
never carry text and are skipped.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from alignbeam.engines.base import Tokenizer
from alignbeam.paths import cache_dir

REPLACEMENT = "\ufffd"
#: table codes for anchor ids without a context-free mapping
SKIP = -1  # special/control or empty text: never carries text
PARTIAL = -2  # text is not a whole character on its own: resolve in context
MULTI = -3  # re-encodes to several draft tokens


#: logits this far below the maximum are ignored when picking the top B and normalising (see Bridge.translate)
TAIL_NATS = 12.0


@dataclass(frozen=True)
class BridgeTable:
    exact: np.ndarray  # int32 [V_s]: draft id if the text maps to one draft token, else SKIP/PARTIAL/MULTI
    first: np.ndarray  # int32 [V_s]: first draft id of the re-encoding, or -1

    @classmethod
    def build(cls, anchor: Tokenizer, draft: Tokenizer) -> BridgeTable:
        texts = anchor.token_texts()
        n = anchor.vocab_size
        exact = np.full(n, SKIP, dtype=np.int32)
        first = np.full(n, -1, dtype=np.int32)
        idx = [i for i, t in enumerate(texts) if t and REPLACEMENT not in t]
        partial = [i for i, t in enumerate(texts) if t and REPLACEMENT in t]
        exact[partial] = PARTIAL
        encoded = draft.encode_batch([texts[i] for i in idx])
        for i, ids in zip(idx, encoded, strict=True):
            if ids:
                first[i] = ids[0]
                exact[i] = ids[0] if len(ids) == 1 else MULTI
        for e in anchor.eog_ids:
            if e < n:
                exact[e] = first[e] = draft.eot_id
        return cls(exact, first)

    @classmethod
    def load_or_build(cls, anchor: Tokenizer, draft: Tokenizer, use_disk: bool = True) -> BridgeTable:
        """A few hundred ms to build; cached on disk so a second process pays only a file read.

        The cache never stops a run. A cache file that cannot be read back as this pair's table (truncated, not an
        npz, wrong arrays) is rebuilt and rewritten. When the cache cannot be written (read-only, ALIGNBEAM_CACHE
        is a file, disk full) the table is kept in memory for the rest of the process, with one warning.
        """
        if not use_disk:
            return cls.build(anchor, draft)
        name = f"{anchor.fingerprint()}-{draft.fingerprint()}-v1.npz"
        path = str(cache_dir() / "bridge" / name)
        table = _bridge_memory.get(path) or _read_bridge_table(path, anchor.vocab_size)
        if table is None:
            table = cls.build(anchor, draft)
            try:
                _write_bridge_table(path, table)
            except OSError as e:
                _bridge_memory[path] = table
                _warn_bridge_cache_once(path, e)
        return table


#: tables that could not be written to the cache (read-only cache): kept for the process, keyed by cache path
_bridge_memory: dict[str, BridgeTable] = {}
_bridge_warned: set[str] = set()


def _read_bridge_table(path: str, n: int) -> BridgeTable | None:
    """The cached table, or None when there is none or it is damaged (then it is rebuilt and rewritten)."""
    import logging

    try:
        with np.load(path) as z:
            exact, first = z["exact"], z["first"]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as e:  # truncated (BadZipFile, EOFError), not an npz, arrays missing: whatever it is, rebuild
        logging.getLogger("alignbeam.bridge").info("bridge table cache %s is damaged (%s); rebuilding it", path, e)
        return None
    if exact.shape != (n,) or first.shape != (n,) or exact.dtype != np.int32 or first.dtype != np.int32:
        logging.getLogger("alignbeam.bridge").info("bridge table cache %s does not fit its pair; rebuilding it", path)
        return None
    return BridgeTable(exact, first)


def _write_bridge_table(path: str, table: BridgeTable) -> None:
    """Atomically: a temporary file in the same folder, renamed into place; no temporary file is left behind."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".bridge.", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, exact=table.exact, first=table.first)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _warn_bridge_cache_once(path: str, err: OSError) -> None:
    import logging
    from pathlib import Path

    from alignbeam.paths import cache_problem

    key = str(cache_dir())
    if key not in _bridge_warned:
        _bridge_warned.add(key)
        logging.getLogger("alignbeam.bridge").warning(
            "alignbeam: %s Bridge tables are kept in memory for this run.", cache_problem(Path(path).parent, err)
        )


@dataclass
class Translation:
    """A translated anchor distribution: sparse over the draft vocabulary, normalised over the kept mass."""

    ids: np.ndarray  # int64 draft ids (unique)
    probs: np.ndarray  # float64, sums to 1 (empty when nothing was kept)
    kept_mass: float  # anchor probability mass that found a draft token (of the whole distribution)
    fallback: bool  # nothing kept: the step falls back to the draft alone


class Bridge:
    """Translates anchor next-token distributions into the draft vocabulary for one (anchor, draft) pair."""

    def __init__(self, anchor: Tokenizer, draft: Tokenizer, policy: str = "drop", table: BridgeTable | None = None):
        if policy not in ("drop", "first", "exact"):
            raise ValueError(f"unknown bridge policy {policy!r}")
        self.anchor = anchor
        self.draft = draft
        self.policy = policy
        self.identity = anchor.fingerprint() == draft.fingerprint()
        self.table = None if self.identity else (table or BridgeTable.load_or_build(anchor, draft))
        self.draft_vocab = draft.vocab_size

    def with_policy(self, policy: str) -> Bridge:
        if policy == self.policy:
            return self
        return Bridge(self.anchor, self.draft, policy, self.table)

    def translate(self, anchor_logits: np.ndarray, top_b: int, context: list[int] | None = None) -> Translation:
        """Top-B anchor tokens -> draft ids. `context` is the anchor's response so far (for partial tokens).

        Runs in float32 on the logits. The only full passes over the anchor's vocabulary are a max and a
        comparison: the top B are picked among the tokens within TAIL_NATS of the best (each token below weighs
        < e^-12 of the best; when fewer than B are that close, only those are kept), so the argpartition and the
        exp-sum run on a few hundred or thousand tokens. The
        translated distribution is renormalised over what was kept, so the window only changes `kept_mass`, a
        diagnostic, which is measured against the tokens in the window (on real Qwen logits the excluded tail
        is under 1% of the mass). Translation of the top 50 on Qwen's 151k vocabulary went from 1.7 ms to
        about 0.15 ms (benchmarks/bridge.py, real logits).
        """
        x = np.asarray(anchor_logits, dtype=np.float32)
        m = float(x.max())
        b = min(top_b, len(x))
        cand = np.flatnonzero(x >= m - TAIL_NATS)
        xc = x[cand]
        # fewer than B tokens in the window (a peaked step): the ones below weigh < e^-12 of the best each, and
        # the translation is renormalised over what is kept, so they are left out instead of searched for
        top = cand[np.argpartition(xc, len(xc) - b)[len(xc) - b :]] if len(cand) > b else cand
        log_z = m + float(np.log(np.exp(xc - m, dtype=np.float32).sum(dtype=np.float64)))
        pt = np.exp(x[top].astype(np.float64) - log_z)
        if self.identity:  # same tokenizer: the top B are already draft ids (ids past the draft's vocabulary drop)
            keep = top < self.draft_vocab
            kept = float(pt[keep].sum())
            if kept <= 0.0:
                return Translation(np.empty(0, np.int64), np.empty(0), 0.0, True)
            order = np.argsort(top[keep])
            return Translation(top[keep][order].astype(np.int64), pt[keep][order] / kept, kept, False)
        code = self.table.exact[top]
        tgt = np.where(code == MULTI, self.table.first[top], code) if self.policy == "first" else code.copy()
        if self.policy != "exact" and context is not None:
            for j in np.flatnonzero(code == PARTIAL):
                tgt[j] = self._in_context(int(top[j]), context)
        keep = tgt >= 0
        kept = float(pt[keep].sum())
        if kept <= 0.0:
            return Translation(np.empty(0, np.int64), np.empty(0), 0.0, True)
        ids, inv = np.unique(tgt[keep].astype(np.int64), return_inverse=True)
        probs = np.bincount(inv, weights=pt[keep], minlength=len(ids)) / kept
        return Translation(ids, probs, kept, False)

    def _in_context(self, token: int, context: list[int]) -> int:
        """text(a) = decode(resp + [a]) - decode(resp); a byte piece may complete a character here."""
        before = self.anchor.decode(context[-8:])
        after = self.anchor.decode([*context[-8:], token])
        if not after.startswith(before.rstrip(REPLACEMENT)):
            return SKIP
        text = after[len(before.rstrip(REPLACEMENT)) :]
        if not text or REPLACEMENT in text:
            return SKIP
        ids = self.draft.encode(text)
        if len(ids) == 1:
            return ids[0]
        return ids[0] if (ids and self.policy == "first") else SKIP
