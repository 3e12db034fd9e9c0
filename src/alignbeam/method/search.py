"""The candidate phase: priming K distinct first tokens, N mixed steps per beam, continuation by the draft alone.

Every model call goes through `Model.step`, one batched forward pass for all live beams, so K beams cost one
pass per token position rather than K. The anchor is only consulted during the mixed prefix; its sessions are
closed as soon as the prefix is done. Nothing here knows which engine runs underneath.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Model, Sampling, Session, Snapshot, eog_index, masked
from alignbeam.method.bridge import Bridge, Translation
from alignbeam.method.mixing import anchor_share, mix
from alignbeam.method.readout import softmax
from alignbeam.method.sync import TextSync
from alignbeam.method.textrules import declines_first, relapse_cut, trim_stop
from alignbeam.method.trace import Candidate, Timer


def _pieces(decode: Callable[[Sequence[int]], str], tokens: Sequence[int]) -> list[str]:
    """Each token's own text: what decoding one more token adds (a partial character shows once complete)."""
    out, done = [], ""
    for i in range(len(tokens)):
        text = decode(tokens[: i + 1]).rstrip("\ufffd")
        out.append(text[len(done) :])
        done = text
    return out


def log_prob(logits: np.ndarray, t: int) -> float:
    """log softmax(logits)[t] without materialising the distribution."""
    m = float(logits.max())
    return float(logits[t]) - m - math.log(float(np.exp(logits - m, dtype=np.float64).sum()))


@dataclass
class Beam:
    cand: Candidate
    draft: Session
    anchor: Session | None = None
    done: bool = False  # no more tokens: end-of-turn, stop string, or max_new_tokens
    declines: bool | None = None  # relapse_cut: the first sentence declines (None: not complete yet)


class CandidateSearch:
    """The K beams of one generation. Callers see candidates (`candidates`, `partial_texts`, `finish`) and steer
    the search (`start`, `continue_all`, `prune_to`); the beams and their sessions stay inside."""

    def __init__(self, draft: Model, anchor: Model | None, bridge: Bridge | None, cfg: AlignBeamConfig) -> None:
        self.draft = draft
        self.anchor = anchor
        self.bridge = bridge
        self.cfg = cfg
        self.use_anchor = anchor is not None and bridge is not None and cfg.alpha > 0 and cfg.n_mix > 0
        self.sync = TextSync(anchor.tokenizer, draft.tokenizer, bridge.identity) if self.use_anchor else None
        self.eog = draft.tokenizer.eog_ids
        # ignore_eos: end-of-turn ids masked out of every choice, so each beam runs to max_new_tokens
        self._eog_idx = eog_index(draft.tokenizer) if cfg.ignore_eos else None
        self._beams: list[Beam] = []

    def _no_eos(self, x: np.ndarray, fill: float) -> np.ndarray:
        return masked(x, self._eog_idx, fill)

    @property
    def candidates(self) -> list[Candidate]:
        """The candidates so far, in beam order (their tokens grow as the search goes on)."""
        return [b.cand for b in self._beams]

    def partial_texts(self) -> list[str]:
        """Each candidate's text so far (what an early judge reads)."""
        return [self.draft.tokenizer.decode(b.cand.tokens) for b in self._beams]

    def prune_to(self, index: int) -> None:
        """Keep growing only candidate `index`: the others stop where they are (marked as stopped early)."""
        for i, b in enumerate(self._beams):
            if i != index and not b.done:
                b.done = b.cand.stopped_early = True

    # -- phase 1 + 2: priming and mixed steps -------------------------------------------------------
    def start(
        self, d_prompt: list[int], a_prompt: list[int] | None, timer: Timer, a_state: Snapshot | None = None
    ) -> None:
        """Prime K distinct first tokens from the mixed distribution and grow each beam through the mixed
        prefix (N tokens). `a_state`: the anchor already read this prompt (the anchor check), so its state is
        restored instead of prefilled again."""
        with timer.phase("draft_prefill"):
            d0 = self.draft.session(d_prompt)
        a0 = None
        if self.use_anchor:
            assert self.anchor is not None and a_prompt is not None
            with timer.phase("anchor_prefill"):
                if a_state is not None and a_state.tokens == a_prompt:
                    a0 = self.anchor.restore(a_state)
                else:
                    a0 = self.anchor.session(a_prompt)
        self._a_len = len(a_prompt) if a_prompt else 0
        beams = self._prime(d0, a0, timer)
        self._advance(beams, timer, "mixed_steps")
        for _ in range(1, self.cfg.n_mix):
            live = [b for b in beams if not b.done]
            if not live:
                break
            self._mixed_step(live, timer)
            self._advance(live, timer, "mixed_steps")
        for b in beams:
            if b.anchor is not None:
                b.anchor.close()
                b.anchor = None
        self._beams = beams

    def _prime(self, d0: Session, a0: Session | None, timer: Timer) -> list[Beam]:
        """The K beams with distinct first tokens (the K most likely under the mix), each on its own fork of the
        prompt's sessions, and the draft's own greedy beam when `include_draft` is set."""
        cfg = self.cfg
        tr = self._translate(a0, timer) if a0 is not None else None
        self._ensure([d0], [tr])
        logits0 = d0.logits()
        p0 = self._no_eos(mix(logits0, tr, cfg.alpha, cfg.support) if cfg.n_mix > 0 else softmax(logits0), 0.0)
        k = min(cfg.k, int(np.count_nonzero(p0)))
        firsts = [int(t) for t in np.argsort(-p0, kind="stable")[:k]]
        beams: list[Beam] = []
        for i in range(len(firsts)):
            d = d0 if i == 0 else d0.fork()
            a = None if a0 is None else (a0 if i == 0 else a0.fork())
            beams.append(Beam(Candidate(index=i), d, a))
        plain: Beam | None = None
        if cfg.include_draft and self.use_anchor:
            # the draft's own greedy answer, grown in the same batches as the mixed beams but never mixed
            plain = Beam(Candidate(index=len(beams), source="draft"), d0.fork())
        for b, t in zip(beams, firsts, strict=True):
            self._accept(b, t, p0, tr, mixed=cfg.n_mix > 0, draft_logits=logits0)
        if plain is not None:
            first = int(np.argmax(self._no_eos(logits0, -np.inf)))
            self._accept(plain, first, np.empty(0), None, mixed=False, draft_logits=logits0)
            beams.append(plain)
        return beams

    def _mixed_step(self, live: list[Beam], timer: Timer) -> None:
        """One mixed token for each live beam (the draft's own beam takes its greedy token)."""
        if self.use_anchor:
            self._resync([b for b in live if b.anchor is not None], timer)
        trs = [
            self._translate(b.anchor, timer) if b.anchor is not None and b.cand.source != "draft" else None
            for b in live
        ]
        self._ensure([b.draft for b in live], trs)
        for b, tr in zip(live, trs, strict=True):
            lg = b.draft.logits()
            if b.cand.source == "draft":
                t = int(np.argmax(self._no_eos(lg, -np.inf)))
                self._accept(b, t, np.empty(0), None, mixed=False, draft_logits=lg)
                continue
            p = self._no_eos(mix(lg, tr, self.cfg.alpha, self.cfg.support), 0.0)
            self._accept(b, int(np.argmax(p)), p, tr, mixed=True, draft_logits=lg)

    def _translate(self, a: Session, timer: Timer) -> Translation:
        assert self.bridge is not None
        logits = a.logits()
        with timer.phase("bridge"):
            return self.bridge.translate(logits, self.cfg.top_b, context=a.tokens[self._a_len :])

    def _ensure(self, sessions: list[Session], trs: list[Translation | None]) -> None:
        """Ask the draft's engine for its exact probability of every translated anchor token (most likely first):
        a remote draft sees only its top few next tokens otherwise. Nothing to ask (and no sort on the hot path)
        when the draft's logits already hold every token."""
        if self.draft.full_vocabulary:
            return
        rows = [(s, tr.ids[np.argsort(-tr.probs, kind="stable")]) for s, tr in zip(sessions, trs, strict=True) if tr]
        rows = [(s, ids) for s, ids in rows if len(ids)]
        if rows:
            self.draft.ensure([s for s, _ in rows], [ids.tolist() for _, ids in rows])

    def _resync(self, live: list[Beam], timer: Timer) -> None:
        assert self.sync is not None and self.anchor is not None
        if not live:
            return
        feeds: list[list[int]] = []
        with timer.phase("resync"):
            for b in live:
                assert b.anchor is not None
                keep, feed = self.sync.plan(b.anchor.tokens[self._a_len :], b.cand.tokens)
                b.anchor.truncate(self._a_len + keep)
                feeds.append(feed)
        with timer.phase("anchor_steps"):
            self.anchor.step([b.anchor for b in live], feeds)  # type: ignore[misc]

    def _accept(
        self,
        b: Beam,
        t: int,
        p: np.ndarray,
        tr: Translation | None,
        mixed: bool,
        draft_logits: np.ndarray | None = None,
    ) -> None:
        c = b.cand
        if draft_logits is not None and self.cfg.select == "helpful":
            c.draft_logprob += log_prob(draft_logits, t)
        if mixed:
            c.n_mixed += 1
            c.mixed_logprob += math.log(max(float(p[t]), 1e-300))
            p_draft = math.exp(log_prob(draft_logits, t)) if draft_logits is not None else 0.0
            c.anchor_shares.append(round(anchor_share(t, tr, self.cfg.alpha, p_draft), 4))
            if tr is not None:
                c.kept_mass.append(round(tr.kept_mass, 4))
                c.fallbacks += int(tr.fallback)
        if t in self.eog:
            b.done = c.finished = True
            return
        c.tokens.append(t)
        if self.cfg.relapse_cut and b.declines is not False and self._cut_relapse(b):
            return
        stopped = self._hit_stop(c)
        if stopped or len(c.tokens) >= self.cfg.max_new_tokens:
            b.done = True
            c.finished = stopped

    def _cut_relapse(self, b: Beam) -> bool:
        """End a beam whose declining first sentence turns to help, keeping only the refusal (True if cut)."""
        c = b.cand
        text = self.draft.tokenizer.decode(c.tokens)
        if b.declines is None:
            b.declines = declines_first(text)
        if not b.declines:
            return False
        cut = relapse_cut(text)
        if cut is None:
            return False
        while c.tokens and len(self.draft.tokenizer.decode(c.tokens).rstrip()) > cut:
            c.tokens.pop()
        b.done = c.finished = c.relapse_cut = True
        return True

    def _advance(self, beams: list[Beam], timer: Timer, phase: str) -> None:
        live = [b for b in beams if not b.done]
        if live:
            with timer.phase(phase):
                self.draft.step([b.draft for b in live], [[b.cand.tokens[-1]] for b in live])

    def _hit_stop(self, c: Candidate) -> bool:
        if not self.cfg.stop:
            return False
        text = self.draft.tokenizer.decode(c.tokens[-16:])
        return any(s in text for s in self.cfg.stop)

    # -- phase 3: continuation by the draft alone ---------------------------------------------------
    def continue_all(self, timer: Timer, rng: np.random.Generator, limit: int | None = None) -> None:
        """Extend every live beam until it ends or holds `limit` tokens (default: max_new_tokens)."""
        for _ in self.iter_continue(timer, rng, limit):
            pass

    def iter_continue(self, timer: Timer, rng: np.random.Generator, limit: int | None = None) -> Iterator[None]:
        """`continue_all`, one yield per generated position (streaming hooks in here).

        The draft's engine decodes (`Model.decoder`): in-process one batched step per position, on a serving
        engine one streamed completion per beam. Either way each token passes `_accept` here, so stop strings, the
        relapse cut and the token limit end a beam the same way, and a beam that ends stops its decoding."""
        cap = self.cfg.max_new_tokens if limit is None else min(limit, self.cfg.max_new_tokens)
        live = [b for b in self._beams if not b.done and len(b.cand.tokens) < cap]
        if not live:
            return
        cfg = self.cfg
        sampling = Sampling(cfg.temperature, cfg.top_p, cfg.ignore_eos)
        limits = [cap - len(b.cand.tokens) for b in live]
        dec = self.draft.decoder([b.draft for b in live], limits, sampling, rng)
        fed = False
        try:
            while True:
                with timer.phase("continuation"):
                    got = dec.next()
                if not got:
                    break
                for i, t in got.items():
                    b = live[i]
                    self._accept(b, t, np.empty(0), None, mixed=False)
                    if b.done:
                        dec.stop(i)
                yield None
                if all(b.done or len(b.cand.tokens) >= cap for b in live):
                    break
            fed = True
        finally:
            with timer.phase("continuation"):
                dec.close(feed=fed)

    def finish(self) -> list[Candidate]:
        """The candidates' final texts (stop strings trimmed); closes every draft session."""
        decode = self.draft.tokenizer.decode
        for b in self._beams:
            b.cand.text = trim_stop(decode(b.cand.tokens), self.cfg.stop)[0].rstrip("\ufffd")
            b.cand.prefix_pieces = _pieces(decode, b.cand.tokens[: b.cand.n_mixed])
            b.draft.close()
        return self.candidates

    def close(self) -> None:
        """Close whatever sessions are still open (a generation that ended early, by an error or a client gone)."""
        for b in self._beams:
            if b.anchor is not None:
                b.anchor.close()
                b.anchor = None
            b.draft.close()
