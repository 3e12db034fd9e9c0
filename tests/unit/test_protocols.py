"""The remote engine's wire formats: request bodies and the parsing of each engine's answer (contract tests on
answers in each engine's documented shape; llama-server's was recorded from the real server the integration tests
start), plus model-URL parsing and the top-n to full-vocabulary read-out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import require_embedded

from alignbeam.engines.protocols import PROTOCOLS, LlamaServer, OpenAICompletions, SGLang, TopLogprobs
from alignbeam.engines.remote import OUTSIDE_GAP, RemoteSpec, _message
from alignbeam.errors import ModelLoadError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocols"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_vllm_request_asks_for_token_ids_and_parses_the_documented_answer() -> None:
    f = fixture("vllm")
    path, body = OpenAICompletions().next_token_request("Qwen/Qwen2.5-0.5B-Instruct", f["request"]["prompt"], 5)
    assert path == "/v1/completions"
    assert body["return_tokens_as_token_ids"] is True and body["max_tokens"] == 1 and body["logprobs"] == 5
    assert body["prompt"] == f["request"]["prompt"]
    first, second = OpenAICompletions().parse_next_token(f["response"], 2)
    assert first.ids[:2] == [12095, 264] and first.logprobs[0] == pytest.approx(-0.0621)
    assert second.ids[0] == 220 and len(second.ids) == 5


def test_vllm_choices_are_placed_by_their_index() -> None:
    f = fixture("vllm")
    f["response"]["choices"].reverse()
    first, second = OpenAICompletions().parse_next_token(f["response"], 2)
    assert first.ids[0] == 12095 and second.ids[0] == 220


def test_vllm_answer_without_token_ids_is_refused_not_misread() -> None:
    f = fixture("vllm")
    top = f["response"]["choices"][0]["logprobs"]["top_logprobs"][0]
    f["response"]["choices"][0]["logprobs"]["top_logprobs"][0] = {" Paris": -0.06, **{k: v for k, v in top.items()}}
    with pytest.raises(ValueError, match="token_id"):
        OpenAICompletions().parse_next_token(f["response"], 2)


def test_sglang_request_and_answer() -> None:
    f = fixture("sglang")
    path, body = SGLang().next_token_request("m", f["request"]["input_ids"], 5)
    assert path == "/generate" and body["input_ids"] == f["request"]["input_ids"]
    assert body["return_logprob"] is True and body["top_logprobs_num"] == 5
    assert body["sampling_params"]["max_new_tokens"] == 1
    first, second = SGLang().parse_next_token(f["response"], 2)
    assert first.ids == [12095, 264, 279, 1112, 4141] and second.logprobs[1] == pytest.approx(-1.1713)


def test_llama_server_recorded_answer() -> None:
    f = fixture("llama_server")
    path, body = LlamaServer().next_token_request("", f["request"]["prompt"], f["request"]["n_probs"])
    assert path == "/completion" and body["n_predict"] == 1 and body["post_sampling_probs"] is False
    parsed = LlamaServer().parse_next_token(f["response"], len(f["request"]["prompt"]))
    assert len(parsed) == len(f["request"]["prompt"])
    for p in parsed:
        assert len(p.ids) == f["request"]["n_probs"] and p.logprobs == sorted(p.logprobs, reverse=True)
        assert np.exp(p.logprobs).sum() <= 1.0 + 1e-4


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_wrong_answer_counts_are_errors(name: str) -> None:
    proto = PROTOCOLS[name]()
    f = fixture({"llama-server": "llama_server", "vllm": "vllm", "sglang": "sglang"}[name])
    with pytest.raises((ValueError, KeyError)):
        proto.parse_next_token(f["response"], 3)
    with pytest.raises((ValueError, KeyError, TypeError)):
        proto.parse_next_token({"unexpected": True}, 1)


def test_error_messages_are_read_from_both_error_shapes() -> None:
    import httpx

    nested = httpx.Response(400, json=fixture("vllm")["error"])
    flat = httpx.Response(400, json={"object": "error", "message": "bad logprobs", "code": 400})
    text = httpx.Response(502, text="<html>bad gateway</html>")
    assert "greater than max allowed" in _message(nested)
    assert _message(flat) == "bad logprobs"
    assert "bad gateway" in _message(text)


def test_model_urls() -> None:
    s = RemoteSpec.parse("http://gpu-1:8000/v1#Qwen/Qwen2.5-1.5B-Instruct")
    assert s.base_url == "http://gpu-1:8000" and s.served == "Qwen/Qwen2.5-1.5B-Instruct" and s.tokenizer == ""
    s = RemoteSpec.parse("https://h/prefix/v1/?protocol=vllm&top_logprobs=20&timeout=5#spec@/models/tok")
    assert (s.base_url, s.protocol, s.top_logprobs, s.timeout) == ("https://h/prefix", "vllm", 20, 5.0)
    assert (s.served, s.tokenizer) == ("spec", "/models/tok")
    for bad in (
        "http://h:1?protocol=tgi",
        "http://h:1?top_logprobs=0",
        "http://h:1?colour=red",
        "http://h:1?timeout=x",
    ):
        with pytest.raises(ModelLoadError):
            RemoteSpec.parse(bad)


def test_top_n_becomes_a_full_vocabulary_vector_with_the_rest_far_below() -> None:
    from alignbeam.engines.remote import RemoteModel

    model = RemoteModel.__new__(RemoteModel)
    model._vocab, model.spec, model.protocol, model.served = 10, RemoteSpec.parse("http://h:1"), LlamaServer(), ""
    v = model._dense(TopLogprobs([3, 7, 42], [-0.1, -2.5, -0.2]))  # 42 is outside this vocabulary: dropped
    assert v.shape == (10,) and v[3] == pytest.approx(-0.1) and v[7] == pytest.approx(-2.5)
    assert np.all(np.delete(v, [3, 7]) == pytest.approx(-2.5 - OUTSIDE_GAP))


def test_a_named_protocol_loads_while_the_backend_is_down() -> None:
    from alignbeam.engines.remote import load_remote
    from alignbeam.errors import BackendError

    require_embedded("smollm2-135m")
    m = load_remote("http://127.0.0.1:9?protocol=llama-server&retries=0#smollm2-135m")
    assert m.health()["state"] == "down" and m.info.engine == "remote:llama-server"
    with pytest.raises(BackendError, match="cannot be reached"):
        m.session(m.tokenizer.encode("hi")).logits()
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        load_remote("http://127.0.0.1:9#smollm2-135m")
