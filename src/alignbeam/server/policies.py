"""Per-key policies: each API key (a tenant) gets its own operating point and judge policy text.

One gateway often serves several applications whose right safety-utility point differs (a clinic's assistant, a
coding assistant). A config file's `policies:` section names one policy per key; the requests that carry that key
run with its knobs as their defaults (a request's own knob fields still apply on top, as on any request) and, for
a guard-model judge, its policy text. `default` (no key) serves every other authorised request. The policy's name
goes in the access log and the metrics' labels, never the key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request


@dataclass(frozen=True)
class Policy:
    name: str
    key: str | None = None  # None: the default policy (the server's own --api-key, or no auth at all)
    knobs: dict[str, Any] = field(default_factory=dict)
    judge_policy: str | None = None  # the guard judge's policy text for these requests (None: the judge's own)


DEFAULT = Policy("default")


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def policy_for(policies: tuple[Policy, ...], api_key: str | None, request: Request) -> Policy | None:
    """The policy a request's key selects, or None when the request is not authorised.

    Every key is compared in constant time, and all of them are compared (no early exit), so response timing
    reveals neither how much of a guess was right nor which tenant's key it came close to."""
    token = bearer(request)
    default = next((p for p in policies if p.key is None), DEFAULT)
    keyed = [p for p in policies if p.key is not None]
    if token is None:
        return default if api_key is None and not keyed else None
    found = None
    for p in keyed:
        if secrets.compare_digest(token.encode(), p.key.encode()):  # type: ignore[union-attr]
            found = p
    if found is not None:
        return found
    if api_key is not None:
        return default if secrets.compare_digest(token.encode(), api_key.encode()) else None
    return default if not keyed else None
