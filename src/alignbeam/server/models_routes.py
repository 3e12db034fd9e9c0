"""GET /v1/models and /v1/models/{id}: the one served model, with what AlignBeam runs under `alignbeam`."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from alignbeam.server import schemas as S
from alignbeam.server.auth import authorized, unauthorized
from alignbeam.server.errors import JSON, api_error
from alignbeam.server.state import ServerState, state_of


def model_card(state: ServerState) -> S.ModelCard:
    ab, judge = state.ab, state.ab.judge
    return S.ModelCard(
        id=state.served_model_name,
        created=state.started,
        alignbeam={
            "draft": ab.draft.name,
            "anchor": ab.anchor.name if ab.anchor is not None else None,
            "judge": type(judge).__name__ if judge is not None else None,
            "config": ab.config.to_dict(),
            "max_tokens_limit": state.limits.max_tokens,
        },
    )


async def list_models(request: Request) -> Response:
    state = state_of(request)
    if not authorized(state, request):
        return unauthorized()
    return JSON(S.dump(S.ModelList(data=[model_card(state)])))


async def get_model(model_id: str, request: Request) -> Response:
    state = state_of(request)
    if not authorized(state, request):
        return unauthorized()
    name = state.served_model_name
    if model_id != name:
        return api_error(404, f"model {model_id!r} not found: this server serves {name!r}", "model")
    return JSON(S.dump(model_card(state)))
