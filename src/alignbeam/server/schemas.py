"""Request and response bodies of the OpenAI-compatible server, and how a request becomes AlignBeam overrides.

Requests are strict (`extra="forbid"`): a misspelt knob (`aplha`) must be an error that names the field, not a
silently ignored field and an answer generated with the default alpha, which a user would take for the effect of
their setting. Knob *values* are not range-checked here: `AlignBeamConfig` is the one place that knows the valid
ranges, so the server merges the overrides into the config and reports its `ConfigError` message as is.
"""

from __future__ import annotations

import time
import typing
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError, create_model

from alignbeam.config import knobs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    """A content part of a chat message; only text parts exist for these text-only models."""

    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None  # accepted (clients send it) and ignored: the chat templates have no speaker names

    def to_alignbeam(self) -> dict[str, str]:
        """`developer` is the newer OpenAI name for `system`; content parts are joined into one string."""
        role = "system" if self.role == "developer" else self.role
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": role, "content": content}


#: the AlignBeam knobs a request may set in its body (`extra_body=` in the openai client), by their
#: `AlignBeamConfig` names: every config field marked `request=True` that OpenAI has no field of its own for
KNOBS = tuple(kn.name for kn in knobs() if kn.request and kn.openai is None)
#: config fields carried by an OpenAI request field: config name -> OpenAI name (max_new_tokens -> max_tokens)
OPENAI_FIELDS = {kn.name: kn.openai for kn in knobs() if kn.openai is not None}


def _request_type(t: Any) -> Any:
    """A knob's type in a request body: optional (unset = the server's default), strict where pydantic's lax mode
    would change the value (1.7 -> 1 for an int, "yes" -> True for a bool)."""
    args = [a for a in typing.get_args(t) if a is not type(None)] if typing.get_args(t) else [t]
    base = args[0]
    strict = {int: StrictInt, bool: StrictBool}.get(base, base)
    return strict | None


#: one optional body field per request knob, derived from the config (a new knob needs no edit here)
_KnobFields: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "_KnobFields",
    __base__=_Strict,
    **{kn.name: (_request_type(kn.type), None) for kn in knobs() if kn.name in KNOBS},
)


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class _GenerationRequest(_KnobFields):  # type: ignore[misc,valid-type]
    """Fields shared by /v1/chat/completions and /v1/completions: OpenAI sampling fields plus AlignBeam knobs."""

    model: str | None = None  # any name is accepted: one AlignBeam pipeline is served
    max_tokens: StrictInt | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt = 1
    user: str | None = None  # accepted and ignored
    # OpenAI fields that have no counterpart here: accepted at their neutral value only, so generic clients that
    # always send them work, while a request that relies on them gets a 400 instead of a silent no-op.
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: StrictBool | None = None
    # AlignBeam (the knobs themselves come from _KnobFields)
    mode: Literal["alignbeam", "draft"] = "alignbeam"
    return_trace: StrictBool = False

    def unsupported(self) -> str | None:
        """A message for a standard field set to something this server cannot honour, else None."""
        if self.n != 1:
            return "n: only n=1 is supported (AlignBeam already generates K candidates and returns the safest)"
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) not in (None, 0, 0.0):
                return f"{name}: not supported by this server (send 0 or leave it out)"
        if self.logprobs:
            return "logprobs: not supported by this server"
        return None

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def overrides(self, default_max_tokens: int, default_n_mix: int) -> dict[str, Any]:
        """AlignBeamConfig overrides for this request: standard fields renamed, knobs passed through.

        When the request leaves n_mix unset and asks for fewer tokens than the configured prefix, the prefix is
        shortened to fit: "max_tokens=4" is a reasonable request, and an error about a knob the client never set
        would not be.
        """
        requested = self.requested_max_tokens()
        max_new = default_max_tokens if requested is None else requested
        out: dict[str, Any] = {name: getattr(self, field) for name, field in OPENAI_FIELDS.items() if name != "stop"}
        out["max_new_tokens"] = max_new
        if self.stop is not None:
            out["stop"] = self.stop_strings()
        for name in KNOBS:
            out[name] = getattr(self, name)
        if self.n_mix is None and max_new >= 1 and default_n_mix > max_new:
            out["n_mix"] = max_new
        return out

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(_GenerationRequest):
    messages: list[ChatMessage]
    max_completion_tokens: StrictInt | None = None  # the newer name of max_tokens

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def prompt(self) -> list[dict[str, str]]:
        return [m.to_alignbeam() for m in self.messages]


class CompletionRequest(_GenerationRequest):
    """A legacy completion. The prompt is sent as one user turn through the chat template, because the models
    AlignBeam steers are instruction models and the method (anchor and judge included) works on conversations."""

    prompt: str | list[str]

    def unsupported(self) -> str | None:
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            return "prompt: send one prompt per request (a list of exactly one string is accepted)"
        return super().unsupported()

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# -- responses -----------------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    alignbeam_trace: dict[str, Any] | None = None


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    alignbeam_trace: dict[str, Any] | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(BaseModel):
    """Both the whole legacy completion and one of its stream chunks (OpenAI uses the same object for both)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    alignbeam_trace: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "alignbeam"
    alignbeam: dict[str, Any] | None = None  # which draft / anchor / judge stand behind the served name


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict; optional top-level extras (usage on chunks, alignbeam_trace) are left out when unset so
    the objects look exactly like OpenAI's unless the client asked for more, while `finish_reason: null` stays."""
    d = model.model_dump()
    for key in ("alignbeam_trace", "usage", "alignbeam"):
        if key in d and d[key] is None:
            del d[key]
    return d


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


# OpenAI's finish reasons; "refused" (on_all_unsafe="refuse" replaced every unsafe candidate by the refusal
# message) is what OpenAI calls a content filter, so clients that special-case it keep working.
FINISH_REASONS = {"stop": "stop", "length": "length", "refused": "content_filter"}


def finish_reason(reason: str) -> str:
    return FINISH_REASONS.get(reason, reason)


def describe_validation_error(err: ValidationError | list[dict[str, Any]]) -> tuple[str, str | None]:
    """One readable sentence (and the offending parameter) for pydantic's error list.

    Unknown fields are the common mistake (a misspelt knob, or an OpenAI feature this server lacks), so they
    get a message that names the field and lists what *is* accepted.
    """
    errors = err.errors() if isinstance(err, ValidationError) else err
    if not errors:
        return "invalid request body", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "extra_forbidden":
        field = loc[-1] if loc else "?"
        if len(loc) == 1:
            msg = (
                f"unknown field {field!r}: not an OpenAI parameter this server supports nor an AlignBeam knob "
                f"({', '.join(KNOBS)}, mode, return_trace)"
            )
        else:
            msg = f"unknown field {field!r} in {'.'.join(loc[:-1])}"
    elif first.get("type") == "missing":
        msg = f"missing required field {param!r}"
    else:
        msg = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return msg, param


def parse(model: type[_GenerationRequest], data: Any) -> _GenerationRequest:
    """Validate a decoded JSON body (raises pydantic's ValidationError)."""
    if not isinstance(data, dict):
        raise TypeError("the request body must be a JSON object")
    return model.model_validate(data)
