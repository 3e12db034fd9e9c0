"""What AlignBeam decided for one request, said on every answer: headers, the log and /metrics.

Enforced, the decision is the answer's own. In shadow mode (`serve --enforce false`, or a request's
`"enforce": false` where the server allows it) the client gets exactly the draft alone's answer, and the decision
is what AlignBeam would have done: its route, the classifier's P(harmful), the judge's scores, whether it would
have refused and the text it would have returned. A deployer rolls a safety layer out this way before enforcing
it, and `alignbeam calibrate --from-log` reads the shadow log as traffic (the log keeps the request's messages in
shadow mode only).
"""

from __future__ import annotations

from typing import Any

from alignbeam.method.request import Result
from alignbeam.method.textrules import is_refusal

HEADER_PREFIX = "x-alignbeam-"


def decision_of(result: Result, enforced: bool) -> dict[str, Any]:
    """The decision a finished AlignBeam generation took (its trace), as logged and sent."""
    tr = result.trace
    refused = result.finish_reason == "refused" or is_refusal(result.text)
    out: dict[str, Any] = {
        "enforced": enforced,
        "route": (tr.route if tr is not None else None) or "full",
        "risk": None if tr is None or tr.request_risk is None else round(tr.request_risk, 4),
        "refused": refused,
        "scores": [] if tr is None else [None if c.score is None else round(c.score, 3) for c in tr.candidates],
    }
    if not enforced:
        out["text"] = result.text  # what it would have returned instead of the draft's answer
    return out


def headers(decision: dict[str, Any] | None) -> dict[str, str]:
    """x-alignbeam-route / -risk / -refused / -enforced for an answer (none for the draft baseline mode)."""
    if decision is None:
        return {}
    risk = decision["risk"]
    return {
        HEADER_PREFIX + "route": str(decision["route"]),
        HEADER_PREFIX + "risk": "" if risk is None else f"{risk:.4f}",
        HEADER_PREFIX + "refused": "true" if decision["refused"] else "false",
        HEADER_PREFIX + "enforced": "true" if decision["enforced"] else "false",
    }
