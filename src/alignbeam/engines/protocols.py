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


class OpenAICompletions(Protocol):
    """vLLM's OpenAI-compatible `/v1/completions` with its `return_tokens_as_token_ids` extension."""

    name = "vllm"
    limit_hint = "start vLLM with a larger --max-logprobs, or lower top_logprobs in the URL"

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


class SGLang(Protocol):
    """SGLang's native `/generate` endpoint."""

    name = "sglang"
    limit_hint = "SGLang does not cap top_logprobs_num"

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


PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (LlamaServer, OpenAICompletions, SGLang)}
