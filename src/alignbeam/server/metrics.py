"""Prometheus metrics in the text exposition format, without a client library.

A dozen series do not justify a dependency, and a per-app registry (rather than prometheus_client's process-wide
default one) lets several apps live in one process, as they do in the tests. What is measured is what an operator
tunes AlignBeam with: request outcomes, end-to-end latency, time per method phase (where the K candidates and
the judge spend it), the waiting line, and tokens.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
PHASE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, esc)) + "}"


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Histogram:
    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        for i, b in enumerate(self.bounds):
            if v <= b:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += v
        self.n += 1


class Metrics:
    """Counters and histograms keyed by label tuples; `render()` gives the /metrics page."""

    def __init__(self, gauges: dict[str, tuple[str, Callable[[], float]]] | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = {}
        self._tokens: dict[Labels, int] = {}
        self._latency: dict[Labels, _Histogram] = {}
        self._queue_wait: dict[Labels, _Histogram] = {}
        self._phase: dict[Labels, _Histogram] = {}
        self._decisions: dict[Labels, int] = {}
        #: name -> (help, callable): values read at scrape time (queue length, running requests)
        self.gauges = gauges or {}

    def observe_request(
        self,
        endpoint: str,
        status: int,
        latency_s: float,
        mode: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        queue_wait_s: float | None = None,
        phases_ms: dict[str, float] | None = None,
    ) -> None:
        with self._lock:
            key = (("endpoint", endpoint), ("status", str(status)))
            self._requests[key] = self._requests.get(key, 0) + 1
            lkey = (("endpoint", endpoint), ("mode", mode or "none"))
            self._latency.setdefault(lkey, _Histogram(LATENCY_BUCKETS)).observe(latency_s)
            if queue_wait_s is not None:
                self._queue_wait.setdefault((), _Histogram(LATENCY_BUCKETS)).observe(queue_wait_s)
            for kind, n in (("prompt", prompt_tokens), ("completion", completion_tokens)):
                if n:
                    tkey = (("kind", kind), ("mode", mode or "none"))
                    self._tokens[tkey] = self._tokens.get(tkey, 0) + int(n)
            for phase, ms in (phases_ms or {}).items():
                self._phase.setdefault((("phase", phase),), _Histogram(PHASE_BUCKETS)).observe(ms / 1000.0)

    def observe_decision(self, decision: dict[str, Any], policy: str | None = None) -> None:
        """One AlignBeam decision, by route, whether it refused, whether it was enforced (shadow mode) and the
        policy of the request's key (server/policies.py; never the key itself)."""
        key = (
            ("policy", policy or "default"),
            ("route", str(decision.get("route"))),
            ("refused", "true" if decision.get("refused") else "false"),
            ("enforced", "true" if decision.get("enforced", True) else "false"),
        )
        with self._lock:
            self._decisions[key] = self._decisions.get(key, 0) + 1

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            out += [
                "# HELP alignbeam_requests_total HTTP requests by endpoint and status code.",
                "# TYPE alignbeam_requests_total counter",
            ]
            out += [f"alignbeam_requests_total{_labels(k)} {v}" for k, v in sorted(self._requests.items())]
            out += [
                "# HELP alignbeam_tokens_total Tokens processed, by kind (prompt, completion) and mode.",
                "# TYPE alignbeam_tokens_total counter",
            ]
            out += [f"alignbeam_tokens_total{_labels(k)} {v}" for k, v in sorted(self._tokens.items())]
            out += [
                "# HELP alignbeam_decisions_total AlignBeam decisions by policy, route, refusal and enforcement.",
                "# TYPE alignbeam_decisions_total counter",
            ]
            out += [f"alignbeam_decisions_total{_labels(k)} {v}" for k, v in sorted(self._decisions.items())]
            out += self._hist("alignbeam_request_duration_seconds", "End-to-end request latency.", self._latency)
            out += self._hist(
                "alignbeam_queue_wait_seconds", "Time a request waited for the generation worker.", self._queue_wait
            )
            out += self._hist(
                "alignbeam_phase_duration_seconds",
                "Time per AlignBeam phase in one generation (from the trace: prefill, mixed steps, judge, ...).",
                self._phase,
            )
        for name, (help_, fn) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {_num(fn())}"]
        return "\n".join(out) + "\n"

    @staticmethod
    def _hist(name: str, help_: str, series: dict[Labels, _Histogram]) -> list[str]:
        out = [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
        for labels, h in sorted(series.items()):
            cum = 0
            for b, c in zip((*h.bounds, math.inf), h.counts):
                cum += c
                out.append(f"{name}_bucket{_labels((*labels, ('le', _num(b))))} {cum}")
            out.append(f"{name}_sum{_labels(labels)} {h.sum:.6f}")
            out.append(f"{name}_count{_labels(labels)} {h.n}")
        return out
