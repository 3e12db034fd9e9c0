"""One request, top to bottom: route -> encode -> candidates -> judge -> select -> result.

1. the gate decides the route and narrows the config (route.py);
2. the conversation is encoded in the draft's tokens and, when the route mixes, the anchor's (once: the anchor
   check's encoding is reused), after the one context and session-capacity check, so every error about size is
   raised before any session opens;
3. the search opens the sessions, primes K distinct first tokens and grows each beam through the mixed prefix
   (search.py, through the bridge and the mixture);
4. the candidates are finished, judged and one is chosen (choose.py), streamed through the emitter;
5. the trace records what happened (trace.py), and the result says why the text ended.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Model, check_context
from alignbeam.errors import AlignBeamError, ConfigError
from alignbeam.method.bridge import Bridge
from alignbeam.method.choose import grow_and_choose
from alignbeam.method.emitter import Emitter
from alignbeam.method.judge import Judge
from alignbeam.method.request import Request, Result
from alignbeam.method.route import Gate, narrowed
from alignbeam.method.search import CandidateSearch
from alignbeam.method.select import Selection
from alignbeam.method.trace import Candidate, Trace


class Pipeline:
    """The method over one loaded draft, anchor and judge; safe to run for several requests at once."""

    def __init__(self, draft: Model, anchor: Model | None, judge: Judge | None) -> None:
        self.draft = draft
        self.anchor = anchor
        self.judge = judge
        self.gate = Gate(anchor, judge)
        #: the draft's early start on serving engines (`route`); off, the gate reads first (benchmarks compare)
        self.early_start = True
        self._bridges: dict[str, Bridge] = {}
        self._bridge_lock = threading.Lock()

    def run(self, req: Request, trace: bool = False) -> Generator[str, None, Result]:
        """Generate one response for `req`; yields text deltas when `req.stream`, returns the Result."""
        started = self.route(req)
        self.encode(req)
        bridge = None
        if req.anchor_ids is not None and self.mixes(req.cfg):
            with req.timer.phase("bridge_table"):
                bridge = self.bridge(req.cfg.bridge)
        search = started or CandidateSearch(self.draft, self.anchor if bridge is not None else None, bridge, req.cfg)
        cfg = req.cfg
        emitter = Emitter(self.draft.tokenizer.decode, cfg.stop, hold_relapse=cfg.relapse_cut)
        try:
            if started is None:
                search.start(req.draft_ids, req.anchor_ids if bridge else None, req.timer, req.anchor_state)
            cands, sel = yield from grow_and_choose(req, search, self.judge, emitter)
        finally:
            search.close()
        chosen = cands[sel.index]
        tr = self._trace(req, cands, sel, bool(bridge and bridge.identity)) if trace else None
        if sel.refuse:
            if req.stream:
                yield cfg.refusal_message
            return Result(cfg.refusal_message, "refused", len(req.draft_ids), len(chosen.tokens), tr)
        if req.stream:
            yield from emitter.feed(chosen.tokens, final_text=chosen.text)
        finish = "stop" if chosen.finished else "length"
        return Result(chosen.text, finish, len(req.draft_ids), len(chosen.tokens), tr)

    def route(self, req: Request) -> CandidateSearch | None:
        """Decide the request's route (the gate). On a serving engine the draft's own answer starts while the gate
        reads, since the draft's server would otherwise wait idle: it is returned, started, when the gate passes
        the request to the draft alone, and dropped (its server slot freed, nothing of it sent) when not."""
        if not self.speculates(req.cfg):
            self.gate.decide(req)
            return None
        early = Request(req.messages, narrowed(req.cfg, "draft"), timer=req.timer)
        try:
            self.encode(early)
        except AlignBeamError:  # too long for the draft alone: the route will say what to do
            self.gate.decide(req)
            return None
        search = CandidateSearch(self.draft, None, None, early.cfg)
        with ThreadPoolExecutor(1, thread_name_prefix="alignbeam-gate") as pool:
            gate = pool.submit(self.gate.decide, req)
            try:
                search.start(early.draft_ids, None, req.timer)
            except BaseException:
                search.close()
                gate.result()  # the gate's own error, if any, is the one to report
                raise
            try:
                gate.result()
            except BaseException:
                search.close()
                raise
        if req.route == "draft" and req.cfg == early.cfg:
            return search
        search.close()
        return None

    def speculates(self, cfg: AlignBeamConfig) -> bool:
        """Whether the draft's answer starts while the gate reads: only with a gate, and a draft on a serving
        engine that no other role shares (in-process, one CPU does both at once no faster)."""
        judge_model = getattr(self.judge, "model", None)
        gated = cfg.gate and self.judge is not None and cfg.use_judge
        shared = self.draft is self.anchor or self.draft is judge_model
        return bool(self.early_start and gated and not self.draft.full_vocabulary and not shared)

    def encode(self, req: Request) -> None:
        """The conversation in the draft's and (when the route mixes) the anchor's tokens, after the one context
        check: every error about length is raised here, before any session opens."""
        cfg = req.cfg
        self.check_sessions(cfg)
        req.draft_ids = self.draft.tokenizer.encode_chat(req.messages)
        check_context(self.draft, len(req.draft_ids), cfg.max_new_tokens, beams=cfg.k + int(cfg.include_draft))
        if not self.mixes(cfg):
            return
        assert self.anchor is not None
        if req.anchor_ids is None:
            req.anchor_ids = self.anchor.tokenizer.encode_chat(req.messages)
        check_context(self.anchor, len(req.anchor_ids), cfg.n_mix, role="anchor")

    def mixes(self, cfg: AlignBeamConfig) -> bool:
        return self.anchor is not None and cfg.alpha > 0 and cfg.n_mix > 0

    def bridge(self, policy: str = "drop") -> Bridge:
        """The (anchor -> draft) bridge for a policy; the table behind it is built once per pair."""
        if self.anchor is None:
            raise AlignBeamError("no anchor model: mixing needs one")
        with self._bridge_lock:  # requests may run at once (remote engines): build the table once
            if policy not in self._bridges:
                base = next(iter(self._bridges.values()), None)
                self._bridges[policy] = (
                    base.with_policy(policy) if base else Bridge(self.anchor.tokenizer, self.draft.tokenizer, policy)
                )
            return self._bridges[policy]

    def check_sessions(self, cfg: AlignBeamConfig) -> None:
        """Refuse, before anything opens, a request that needs more sessions at once than a model has slots for.

        The peak is per loaded model, over the two phases that hold sessions together: the mixed prefix (K draft
        beams, plus the draft's own, and K anchor beams) and judging (one session per candidate plus the shared
        head on the judge's model, with the draft beams still open under early judging)."""
        beams = cfg.k + int(cfg.include_draft)
        judge_model = getattr(self.judge, "model", None) if (self.judge is not None and cfg.use_judge) else None
        prefix: list[tuple[Model | None, int]] = [
            (self.draft, beams),
            (self.anchor if self.mixes(cfg) else None, cfg.k),
        ]
        judging = [(judge_model, beams + 1), (self.draft, beams if cfg.judge_after is not None else 0)]
        for phase in (prefix, judging):
            need: dict[int, tuple[Model, int]] = {}
            for model, n in phase:
                if model is not None and n:
                    need[id(model)] = (model, need.get(id(model), (model, 0))[1] + n)
            for model, n in need.values():
                cap = model.max_sessions
                if cap is not None and n > cap:
                    raise ConfigError(
                        f"k is {cfg.k}, too many for {model.name}: it needs {n} sessions at once and the model was "
                        f"loaded with {cap} sequence slots; lower k, or load it with more slots "
                        f"(load_model({model.name!r}, n_seq_max=...))"
                    )

    @staticmethod
    def _trace(req: Request, cands: list[Candidate], sel: Selection, identity: bool) -> Trace:
        timings = req.timer.ms()
        timings["total"] = req.elapsed_ms()
        return Trace(
            candidates=cands,
            chosen=sel.index,
            all_unsafe=sel.all_unsafe,
            refused_by_policy=sel.refuse,
            timings_ms=timings,
            config=req.cfg.to_dict(),
            identity_bridge=identity,
            request_risk=req.risk,
            gated=req.route == "draft",
            route=req.route,
            anchor_opening=req.anchor_opening,
            anchor_refusal=req.anchor_refusal,
            route_reason=req.reason,
        )
