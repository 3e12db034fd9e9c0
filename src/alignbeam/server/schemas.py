"""Request and response bodies of the OpenAI-compatible server, and how a request becomes AlignBeam overrides.

Every request body is validated here, in one place (`read_request`), before it can queue: bytes -> UTF-8 ->
bounded-depth JSON with finite numbers, no duplicate keys and no lone surrogates -> pydantic models with the
strict types OpenAI documents -> server limits. Whatever a client gets wrong becomes one `BadRequest` with a
readable sentence that names the parameter (`messages[0].content[1]`), answered 400 in OpenAI's error shape.

Requests are strict (`extra="forbid"`): a misspelt knob (`aplha`) must be an error that names the field, not a
silently ignored field and an answer generated with the default alpha, which a user would take for the effect of
their setting. Numbers are strict too: `true` or `"0.3"` is not an alpha (pydantic's lax mode would accept both),
while a JSON integer is a valid float (`temperature: 1`). Knob *values* are not range-checked here:
`AlignBeamConfig` is the one place that knows the valid ranges, so the server merges the overrides into the
config and reports its `ConfigError` message as is; only OpenAI's own documented ranges (temperature 0-2,
top_p (0, 1], at most 4 stop sequences) are part of the schema.
"""

from __future__ import annotations

import time
import typing
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from alignbeam.config import knobs

#: how deeply arrays and objects may nest in a request body (a real request needs 5 levels: body, messages,
#: message, content parts, part); deeper bodies are refused before json.loads could recurse into them
MAX_DEPTH = 64
#: OpenAI's documented limit on stop sequences
MAX_STOP = 4


class BadRequest(Exception):
    """A request the client got wrong; becomes `api_error(status, message, param, code)`."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: a JSON number for a float field: an integer (1) is fine, a boolean or a string is not, and it must be finite
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]

# Unions are discriminated by hand, with tags in angle brackets that `_path` leaves out of the parameter name:
# pydantic's own unions report a failure once per member ("content.str: ... (and 3 more problems)").
UNION_TAG = "<"


def _str_or_list(item: Any, what: str, max_items: int | None = None) -> Any:
    """`str | list[item]`, with one error naming `what` when the value is neither."""

    def kind(v: Any) -> str | None:
        return "<str>" if isinstance(v, str) else "<list>" if isinstance(v, list) else None

    items = list[item] if max_items is None else Annotated[list[item], Field(max_length=max_items)]  # type: ignore[valid-type]
    return Annotated[
        Annotated[str, Tag("<str>")] | Annotated[items, Tag("<list>")],
        Discriminator(kind, custom_error_type="invalid_type", custom_error_message=f"must be {what}"),
    ]


class TextPart(_Strict):
    """A content part of a chat message; only text parts exist for these text-only models."""

    type: Literal["text"]
    text: StrictStr


class _NonTextPart(BaseModel):
    """Any other content part (image_url, input_audio, file, ...): refused with one clear sentence."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, v: Any) -> Any:
        raise PydanticCustomError(
            "unsupported_content", "only text content parts are supported (these are text-only models)"
        )


def _part_kind(v: Any) -> str | None:
    if not isinstance(v, dict) or "type" not in v:
        return None
    return "<text>" if v["type"] == "text" else "<other>"


ContentPart = Annotated[
    Annotated[TextPart, Tag("<text>")] | Annotated[_NonTextPart, Tag("<other>")],
    Discriminator(
        _part_kind,
        custom_error_type="invalid_type",
        custom_error_message='must be a content part object with a "type" ("text")',
    ),
]


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: _str_or_list(ContentPart, "a string or an array of text content parts")  # type: ignore[valid-type]
    name: StrictStr | None = None  # accepted (clients send it) and ignored: the chat templates have no speaker names

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
#: each config annotation's strict request type: no coercion (1.7 -> 1 for an int, "yes" -> True for a bool,
#: true -> 1.0 for a float), and floats are finite
_STRICT_TYPES: dict[Any, Any] = {int: StrictInt, bool: StrictBool, str: StrictStr, float: FiniteFloat}


def _request_type(t: Any) -> Any:
    """A knob's type in a request body: optional (unset = the server's default), strict where pydantic's lax mode
    would change the value (1.7 -> 1 for an int, "yes" -> True for a bool, true -> 1.0 for a float)."""
    args = [a for a in typing.get_args(t) if a is not type(None)] if typing.get_args(t) else [t]
    base = args[0]
    strict = _STRICT_TYPES.get(base, base)
    return strict | None


#: one optional body field per request knob, derived from the config (a new knob needs no edit here)
_KnobFields: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "_KnobFields",
    __base__=_Strict,
    **{kn.name: (_request_type(kn.type), None) for kn in knobs() if kn.name in KNOBS},
)


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class GenerationRequest(_KnobFields):  # type: ignore[misc,valid-type]
    """Fields shared by /v1/chat/completions and /v1/completions: OpenAI sampling fields plus AlignBeam knobs."""

    model: StrictStr | None = None  # any name is accepted: one AlignBeam pipeline is served
    max_tokens: StrictInt | None = None
    temperature: Annotated[FiniteFloat, Field(ge=0, le=2)] | None = None  # OpenAI's documented ranges
    top_p: Annotated[FiniteFloat, Field(gt=0, le=1)] | None = None
    stop: _str_or_list(StrictStr, "a string or an array of strings", MAX_STOP) | None = None  # type: ignore[valid-type]
    seed: StrictInt | None = None  # any integer: the library maps it onto numpy's seed range
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt = 1
    user: StrictStr | None = None  # accepted and ignored
    # OpenAI fields that have no counterpart here: accepted at their neutral value only, so generic clients that
    # always send them work, while a request that relies on them gets a 400 instead of a silent no-op.
    presence_penalty: FiniteFloat | None = None
    frequency_penalty: FiniteFloat | None = None
    logprobs: StrictBool | None = None
    # AlignBeam (the knobs themselves come from _KnobFields)
    mode: Literal["alignbeam", "draft"] = "alignbeam"
    return_trace: StrictBool = False
    enforce: StrictBool | None = None  # false: shadow mode for this request, where the server allows it

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

    def max_tokens_param(self) -> str:
        """The name the request used for its length limit (reported in errors)."""
        return "max_tokens"

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


class ChatCompletionRequest(GenerationRequest):
    messages: list[ChatMessage]
    max_completion_tokens: StrictInt | None = None  # the newer name of max_tokens

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def max_tokens_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"

    def prompt(self) -> list[dict[str, str]]:
        return [m.to_alignbeam() for m in self.messages]


class CompletionRequest(GenerationRequest):
    """A legacy completion. The prompt is sent as one user turn through the chat template, because the models
    AlignBeam steers are instruction models and the method (anchor and judge included) works on conversations."""

    prompt: _str_or_list(StrictStr, "a string or an array of one string")  # type: ignore[valid-type]

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
    alignbeam_decision: dict[str, Any] | None = None


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
    alignbeam_decision: dict[str, Any] | None = None


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
    alignbeam_decision: dict[str, Any] | None = None


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
    for key in ("alignbeam_trace", "alignbeam_decision", "usage", "alignbeam"):
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
