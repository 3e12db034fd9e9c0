"""The wire formats of the serving engines the remote engine talks to, one small class each.

The remote engine needs one thing from a server: for a batch of token-id prompts, the top next-token
log-probabilities *with token ids* (the bridge table and the mixing work on ids, not on strings). Each engine
names that differently:

- llama.cpp's `llama-server`: `POST /completion` with `prompt` a list of token-id lists (several prompts, the
  answer is a list in the same order), `n_predict: 1`, `n_probs: N`; the top list is
  `completion_probabilities[0].top_logprobs[*].{id, logprob}`, a softmax of the raw logits over the whole
  vocabulary (`post_sampling_probs` false, the default), so the sampler settings do not change it.
- vLLM's OpenAI-compatible server: `POST /v1/completions` with `prompt` a list of token-id lists, `max_tokens: 1`,
  `logprobs: N` (at most the server's `--max-logprobs`, 20 by default) and vLLM's `return_tokens_as_token_ids:
  true`, which writes every token, the keys of `top_logprobs` included, as "token_id:<id>".
- SGLang's native `POST /generate` with `input_ids` (a list of lists for a batch), `sampling_params:
  {max_new_tokens: 1}`, `return_logprob: true`, `top_logprobs_num: N`, `logprob_start_len: -1`; the list is
  `meta_info.output_top_logprobs[0]` of `[logprob, token_id, text]` triples.

Named tokens: the mixture needs the draft's probability of each translated anchor token, which may lie outside the
draft's returned top list. vLLM (>= 0.26, `logprob_token_ids`, at most 128 ids a request, shared by its prompts)
and SGLang (`token_ids_logprob`, a list per prompt; answered in `meta_info.output_token_ids_logprobs[0]`) return
the log-probabilities of ids named in the request; llama-server cannot, and keeps the top-n floor.

The continuation after the mixed prefix is an ordinary completion, streamed (server-sent events), with the
generated token ids in every chunk: llama-server's `/completion` chunks carry `tokens` (one id) and
`tokens_predicted`, vLLM's carry `choices[0].token_ids` (`return_token_ids`, vLLM >= 0.10.2), SGLang's carry
`output_ids` (cumulative by default, per chunk with `--incremental-streaming-output`). The same request without
`stream` answers all at once; the remote engine uses it to fill a gap (below).

Each class builds the request body and parses the answer; anything unexpected in an answer is a `ValueError`
that the remote engine reports as a backend error naming the server. The field names and versions are listed in
docs/deployment.md; tests/unit/test_protocols.py pins the parsing of a recorded answer of each engine.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from alignbeam.engines.base import Sampling


@dataclass(frozen=True)
class Piece:
    """What one chunk of a streamed completion (or a whole unstreamed one) says.

    `ids`: generated token ids in this chunk, or all so far when `cumulative`. `total`: how many tokens the server
    says it has generated so far (None: it does not say); more than the ids received means some were not sent
    (llama-server does not stream the id of a token that ends inside a UTF-8 character). `end`: None while
    generating, else "eos" (the model ended its response) or "length" (the token limit, or anything else)."""

    ids: list[int]
    total: int | None = None
    end: str | None = None
    cumulative: bool = False


@dataclass(frozen=True)
class TopLogprobs:
    """The top next-token log-probabilities after one prompt: token ids and natural-log probabilities."""

    ids: list[int]
    logprobs: list[float]


def _float(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        raise ValueError(f"expected a number, got {x!r}")
    return float(x)


def _int(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"expected a token id, got {x!r}")
    return x


def _answers(data: Any, n_prompts: int) -> list[Any]:
    """One answer per prompt, in order: llama-server and SGLang answer a batch with a list, one prompt with a bare
    object."""
    items = data if isinstance(data, list) else [data]
    if len(items) != n_prompts:
        raise ValueError(f"{len(items)} answers for {n_prompts} prompts")
    return items


class Protocol(ABC):
    """One engine's request and answer shapes for next-token log-probabilities."""

    name: ClassVar[str]
    #: what the engine calls the server-side limit on N, for the error message when it refuses N
    limit_hint: ClassVar[str] = ""
    health_path: ClassVar[str] = "/health"

    @abstractmethod
    def next_token_request(self, model: str, prompts: Sequence[Sequence[int]], top_n: int) -> tuple[str, dict]:
        """(path, JSON body) asking for the top `top_n` next tokens after each prompt."""

    @abstractmethod
    def parse_next_token(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        """The answer to `next_token_request`, one entry per prompt in order; ValueError if it is not one."""

    #: the most ids one named-token request may carry (0: the engine cannot name tokens)
    max_named: ClassVar[int] = 0

    def named_request(
        self, model: str, prompts: Sequence[Sequence[int]], ids: Sequence[Sequence[int]]
    ) -> tuple[str, dict]:
        """(path, JSON body) asking for the next-token log-probabilities of `ids[i]` after `prompts[i]`."""
        raise NotImplementedError(f"{self.name} cannot return the log-probabilities of named tokens")

    def parse_named(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        """The answer to `named_request`, one entry per prompt (the named ids it holds); ValueError if not one."""
        raise NotImplementedError(f"{self.name} cannot return the log-probabilities of named tokens")

    @abstractmethod
    def completion_request(
        self, model: str, prompt: Sequence[int], max_tokens: int, sampling: Sampling, seed: int | None, stream: bool
    ) -> tuple[str, dict]:
        """(path, JSON body) for a completion of up to `max_tokens` tokens after `prompt`, sampled as `sampling`
        says (the server's other samplers off), with the generated token ids in the answer."""

    @abstractmethod
    def parse_piece(self, data: Any) -> Piece:
        """One streamed chunk, or a whole unstreamed answer, of `completion_request`; ValueError if it is not one."""


class LlamaServer(Protocol):
    """llama.cpp's `llama-server` (tools/server), native `/completion` endpoint."""

    name = "llama-server"
    limit_hint = "llama-server does not cap n_probs"

    def next_token_request(self, model: str, prompts: Sequence[Sequence[int]], top_n: int) -> tuple[str, dict]:
        body = {
            "prompt": [list(p) for p in prompts],
            "n_predict": 1,
            "n_probs": top_n,
            "temperature": 0.0,
            "cache_prompt": True,  # each step is a one-token extension of the slot's cached prefix
            "post_sampling_probs": False,  # the raw distribution, whatever the sampler settings
            "response_fields": ["completion_probabilities"],
        }
        return "/completion", body

    def parse_next_token(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        out = []
        for item in _answers(data, n_prompts):
            probs = item["completion_probabilities"]
            if not probs:
                raise ValueError("no completion_probabilities in the answer")
            top = probs[0]["top_logprobs"]
            out.append(TopLogprobs([_int(t["id"]) for t in top], [_float(t["logprob"]) for t in top]))
        return out

    def completion_request(
        self, model: str, prompt: Sequence[int], max_tokens: int, sampling: Sampling, seed: int | None, stream: bool
    ) -> tuple[str, dict]:
        body = {
            "prompt": list(prompt),
            "n_predict": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": 0,  # llama-server's defaults (top_k 40, min_p 0.05) would cut the distribution further
            "min_p": 0.0,
            "ignore_eos": sampling.ignore_eos,
            "cache_prompt": True,
            "stream": stream,
            "return_tokens": True,  # the unstreamed answer's `tokens`; streamed chunks carry theirs anyway
        }
        if seed is not None:
            body["seed"] = seed
        return "/completion", body

    def parse_piece(self, data: Any) -> Piece:
        ids = [_int(t) for t in data.get("tokens") or []]
        total = data.get("tokens_predicted")
        end = None
        if data.get("stop"):
            end = "eos" if data.get("stop_type") == "eos" else "length"
        return Piece(ids, None if total is None else _int(total), end)


class OpenAICompletions(Protocol):
    """vLLM's OpenAI-compatible `/v1/completions` with its `return_tokens_as_token_ids` extension."""

    name = "vllm"
    limit_hint = "start vLLM with a larger --max-logprobs, or lower top_logprobs in the URL"
    max_named = 128  # vLLM's MAX_LOGPROB_TOKEN_IDS

    def named_request(
        self, model: str, prompts: Sequence[Sequence[int]], ids: Sequence[Sequence[int]]
    ) -> tuple[str, dict]:
        union = list(dict.fromkeys(int(t) for row in ids for t in row))[: self.max_named]  # one list per request
        body = {
            "model": model,
            "prompt": [list(p) for p in prompts],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 1,  # required beside logprob_token_ids, whose ids then replace the top list
            "logprob_token_ids": union,
            "return_tokens_as_token_ids": True,
        }
        return "/v1/completions", body

    def parse_named(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        return self.parse_next_token(data, n_prompts)  # the same shape: the sampled token and every named id

    def next_token_request(self, model: str, prompts: Sequence[Sequence[int]], top_n: int) -> tuple[str, dict]:
        body = {
            "model": model,
            "prompt": [list(p) for p in prompts],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": top_n,
            "return_tokens_as_token_ids": True,
        }
        return "/v1/completions", body

    def parse_next_token(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        choices = data["choices"]
        if len(choices) != n_prompts:
            raise ValueError(f"{len(choices)} choices for {n_prompts} prompts")
        out: list[TopLogprobs | None] = [None] * n_prompts
        for pos, ch in enumerate(choices):
            i = ch.get("index", pos)
            top = ch["logprobs"]["top_logprobs"][0]
            ids, lps = [], []
            for key, lp in top.items():
                if not key.startswith("token_id:"):
                    raise ValueError(f"top_logprobs key {key!r} is not 'token_id:<id>' (return_tokens_as_token_ids)")
                ids.append(int(key.removeprefix("token_id:")))
                lps.append(_float(lp))
            out[_int(i)] = TopLogprobs(ids, lps)
        if any(o is None for o in out):
            raise ValueError("choice indices do not cover every prompt")
        return out  # type: ignore[return-value]

    def completion_request(
        self, model: str, prompt: Sequence[int], max_tokens: int, sampling: Sampling, seed: int | None, stream: bool
    ) -> tuple[str, dict]:
        body = {
            "model": model,
            "prompt": list(prompt),
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "ignore_eos": sampling.ignore_eos,
            "stream": stream,
            "return_token_ids": True,  # choices[].token_ids: the generated ids (vLLM >= 0.10.2)
        }
        if seed is not None:
            body["seed"] = seed
        return "/v1/completions", body

    def parse_piece(self, data: Any) -> Piece:
        choices = data["choices"]
        if not choices:  # the usage chunk some servers send last
            return Piece([])
        ch = choices[0]
        ids = ch.get("token_ids")
        if ids is None:
            if ch.get("text"):
                raise ValueError("no token_ids in the completion: vLLM older than 0.10.2 (no return_token_ids)")
            ids = []
        reason = ch.get("finish_reason")
        end = None if reason is None else ("eos" if reason == "stop" and ch.get("stop_reason") is None else "length")
        return Piece([_int(t) for t in ids], None, end)


class SGLang(Protocol):
    """SGLang's native `/generate` endpoint."""

    name = "sglang"
    limit_hint = "SGLang does not cap top_logprobs_num"
    max_named = 1024

    def named_request(
        self, model: str, prompts: Sequence[Sequence[int]], ids: Sequence[Sequence[int]]
    ) -> tuple[str, dict]:
        body = {
            "input_ids": [list(p) for p in prompts],
            "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
            "return_logprob": True,
            "token_ids_logprob": [[int(t) for t in row][: self.max_named] for row in ids],
            "logprob_start_len": -1,
        }
        return "/generate", body

    def parse_named(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        out = []
        for item in _answers(data, n_prompts):
            named = item["meta_info"]["output_token_ids_logprobs"][0]
            out.append(TopLogprobs([_int(t[1]) for t in named], [_float(t[0]) for t in named]))
        return out

    def next_token_request(self, model: str, prompts: Sequence[Sequence[int]], top_n: int) -> tuple[str, dict]:
        body = {
            "input_ids": [list(p) for p in prompts],
            "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
            "return_logprob": True,
            "top_logprobs_num": top_n,
            "logprob_start_len": -1,  # no prompt log-probabilities: only the next token's
        }
        return "/generate", body

    def parse_next_token(self, data: Any, n_prompts: int) -> list[TopLogprobs]:
        out = []
        for item in _answers(data, n_prompts):
            top = item["meta_info"]["output_top_logprobs"][0]
            out.append(TopLogprobs([_int(t[1]) for t in top], [_float(t[0]) for t in top]))
        return out

    def completion_request(
        self, model: str, prompt: Sequence[int], max_tokens: int, sampling: Sampling, seed: int | None, stream: bool
    ) -> tuple[str, dict]:
        params: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "ignore_eos": sampling.ignore_eos,
        }
        if seed is not None:
            params["sampling_seed"] = seed  # used by servers started with --enable-deterministic-inference
        return "/generate", {"input_ids": list(prompt), "sampling_params": params, "stream": stream}

    def parse_piece(self, data: Any) -> Piece:
        ids = [_int(t) for t in data["output_ids"]]
        meta = data["meta_info"]
        total = meta.get("completion_tokens")
        reason = meta.get("finish_reason")
        end = None
        if reason is not None:
            kind = reason.get("type") if isinstance(reason, dict) else str(reason)
            matched = reason.get("matched") if isinstance(reason, dict) else None
            end = "eos" if kind == "stop" and not isinstance(matched, str) else "length"
        # output_ids hold every id so far (the default) or this chunk's (--incremental-streaming-output)
        cumulative = total is not None and len(ids) == _int(total)
        return Piece(ids, None if total is None else _int(total), end, cumulative)


PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (LlamaServer, OpenAICompletions, SGLang)}
