"""The remote engine's wire formats: request bodies and the parsing of each engine's answer (contract tests on
answers in each engine's documented shape; llama-server's was recorded from the real server the integration tests
start), plus model-URL parsing and the top-n to full-vocabulary read-out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import require_embedded

from alignbeam.engines.remote import OUTSIDE_GAP, RemoteSpec
from alignbeam.engines.remote.protocols import PROTOCOLS, LlamaServer, OpenAICompletions, SGLang, TopLogprobs
from alignbeam.engines.remote.wire import message
from alignbeam.errors import ModelLoadError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocols"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class VocabOnly:
    """The little of a tokenizer a RemoteModel reads when it is only asked for next-token lists."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.eot_id = 0
        self.eog_ids = frozenset({0})


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
    assert "greater than max allowed" in message(nested)
    assert message(flat) == "bad logprobs"
    assert "bad gateway" in message(text)


def test_model_urls() -> None:
    s = RemoteSpec.parse("http://gpu-1:8000/v1#Qwen/Qwen2.5-1.5B-Instruct")
    assert s.base_url == "http://gpu-1:8000" and s.served == "Qwen/Qwen2.5-1.5B-Instruct" and s.tokenizer == ""
    s = RemoteSpec.parse("https://h/prefix/v1/?protocol=vllm&top_logprobs=20&timeout=5#spec@/models/tok")
    assert (s.base_url, s.protocol, s.top_logprobs, s.timeout) == ("https://h/prefix", "vllm", 20, 5.0)
    assert (s.served, s.tokenizer) == ("spec", "/models/tok")
    assert (s.connections, s.named) == (64, 1)
    assert RemoteSpec.parse("http://h:1?connections=8&named=0#m").connections == 8
    for bad in (
        "http://h:1?protocol=tgi",
        "http://h:1?top_logprobs=0",
        "http://h:1?colour=red",
        "http://h:1?timeout=x",
        "http://h:1?connections=0",
    ):
        with pytest.raises(ModelLoadError):
            RemoteSpec.parse(bad)


def test_top_n_becomes_a_full_vocabulary_vector_with_the_rest_far_below() -> None:
    from alignbeam.engines.remote import RemoteModel

    model = RemoteModel(RemoteSpec.parse("http://h:1"), VocabOnly(10), LlamaServer(), "", 4096)
    v = model.dense(TopLogprobs([3, 7, 42], [-0.1, -2.5, -0.2]))  # 42 is outside this vocabulary: dropped
    model.close()
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


# -- streamed continuations and named tokens -----------------------------------------------------------------
def _pieces(proto: object, lines: list[str]) -> list:
    from alignbeam.engines.remote.wire import event

    return [proto.parse_piece(d) for d in (event(line) for line in lines) if d is not None]  # type: ignore[attr-defined]


def _read(pieces_per_call: list[list], fills: list | None = None, limit: int = 8) -> tuple[list[int], str, list]:
    """Run the stream reader over scripted server answers (one list of pieces per streamed request, in order;
    `fills`: the unstreamed answers). Returns the ids it queued, the end reason and the prompts it sent."""
    import queue
    import threading

    from alignbeam.engines.base import Sampling
    from alignbeam.engines.remote.streams import END, Stream

    calls: list = []
    streams, fill = iter(pieces_per_call), iter(fills or [])

    class Scripted:
        spec = RemoteSpec.parse("http://h:1?retries=2")

        def stream_completion(self, prompt, n, sampling, seed, cancel):
            calls.append(("stream", list(prompt), n))
            yield from next(streams)

        def complete_once(self, prompt, n, sampling, seed):
            calls.append(("once", list(prompt), n))
            return next(fill)

    st = Stream.__new__(Stream)
    st.model, st.cancel, st.q = Scripted(), threading.Event(), queue.SimpleQueue()
    st.run([1, 2], limit, Sampling(), None)
    out = []
    while True:
        item = st.q.get_nowait()
        if isinstance(item, Exception):
            raise item
        if isinstance(item, tuple) and item[0] is END:
            return out, item[1], calls
        out.append(item)


def test_vllm_streamed_completion_request_and_chunks() -> None:
    from alignbeam.engines.base import Sampling

    f = fixture("vllm_stream")
    path, body = OpenAICompletions().completion_request("specialist", f["request"]["prompt"], 8, Sampling(), None, True)
    assert path == "/v1/completions" and body == f["request"]
    ids, end, _ = _read([_pieces(OpenAICompletions(), f["lines"])], limit=16)
    assert ids == f["ids"] and end == f["end"]


def test_sglang_streamed_chunks_cumulative_and_incremental() -> None:
    from alignbeam.engines.base import Sampling

    f = fixture("sglang_stream")
    path, body = SGLang().completion_request("m", f["request"]["input_ids"], 8, Sampling(), None, True)
    assert path == "/generate" and body == f["request"]
    assert _read([_pieces(SGLang(), f["lines"])])[:2] == (f["ids"], "length")
    ids, end, _ = _read([_pieces(SGLang(), f["incremental_lines"])])
    assert ids == f["ids"] and end == "eos"  # finish_reason stop on a token id: the model ended it


def test_llama_server_recorded_stream() -> None:
    f = fixture("llama_server_stream")
    ids, end, calls = _read([_pieces(LlamaServer(), f["lines"])], limit=f["request"]["n_predict"])
    assert ids == f["ids"] and end == f["end"] and len(calls) == 1


def test_a_gap_in_a_llama_server_stream_is_filled_without_streaming() -> None:
    from alignbeam.engines.remote.protocols import Piece

    # token 3 ended inside a UTF-8 character: its id never came; the chunk of token 4 says 3 were generated
    first = [Piece([10], 1), Piece([11], 2), Piece([13], 4)]
    ids, end, calls = _read([first, [Piece([14], 1), Piece([], 1, "eos")]], fills=[Piece([12, 13], 2, "length")])
    assert ids == [10, 11, 12, 13, 14] and end == "eos"
    assert calls == [("stream", [1, 2], 8), ("once", [1, 2, 10, 11], 2), ("stream", [1, 2, 10, 11, 12, 13], 4)]


def test_a_stream_that_breaks_off_resumes_from_what_it_sent() -> None:
    from alignbeam.engines.remote.protocols import Piece
    from alignbeam.engines.remote.wire import BrokeOff

    def broken():
        yield Piece([10], 1)
        raise BrokeOff("llama-server at http://h:1 broke off", "llama-server at http://h:1")

    ids, end, calls = _read([broken(), [Piece([11], 1), Piece([12], 2, "length")]], limit=3)
    assert ids == [10, 11, 12] and end == "length" and calls[1] == ("stream", [1, 2, 10], 2)
    with pytest.raises(BrokeOff):
        _read([broken(), broken(), broken(), broken()], limit=3)  # retries=2: the third break is raised


def test_vllm_named_tokens_request_and_answer() -> None:
    f = fixture("vllm_named")
    path, body = OpenAICompletions().named_request("specialist", f["request"]["prompt"], [[9454, 2753], [2753, 40]])
    assert path == "/v1/completions" and body == f["request"]
    first, second = OpenAICompletions().parse_named(f["response"], 2)
    assert dict(zip(first.ids, first.logprobs)) == {9454: -0.02, 2753: -4.1, 40: -9.75}
    assert second.ids[0] == 2753 and second.logprobs[2] == -9999.0
    too_many = OpenAICompletions().named_request("m", [[1]], [list(range(300))])[1]["logprob_token_ids"]
    assert too_many == list(range(128))  # vLLM's cap per request


def test_sglang_named_tokens_request_and_answer() -> None:
    f = fixture("sglang_named")
    path, body = SGLang().named_request("m", f["request"]["input_ids"], f["request"]["token_ids_logprob"])
    assert path == "/generate" and body == f["request"]
    first, second = SGLang().parse_named(f["response"], 2)
    assert (first.ids, first.logprobs) == ([9454, 2753], [-0.02, -4.1])
    assert (second.ids, second.logprobs) == ([40], [-7.5])
    assert LlamaServer.max_named == 0  # llama-server cannot name tokens: the remote engine never asks it


def test_server_sent_event_lines() -> None:
    from alignbeam.engines.remote.wire import event

    assert event('data: {"a": 1}') == {"a": 1} and event("data: [DONE]") is None
    assert event("") is None and event(": keep-alive") is None and event("event: message") is None
    with pytest.raises(ValueError, match="not a server-sent event"):
        event("<html>bad gateway</html>")


def _replaying_model(named_answer: dict | None) -> object:
    """A RemoteModel over vLLM whose HTTP answers are the recorded fixtures (vLLM cannot run here): the top list
    of vllm.json, and `named_answer` for a named-token request."""
    import httpx

    from alignbeam.engines.remote import RemoteModel, RemoteSession

    top = fixture("vllm")["response"]
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        data = named_answer if named_answer is not None and "logprob_token_ids" in body else top
        return httpx.Response(200, json={**data, "choices": data["choices"][: len(body["prompt"])]})

    client = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://h:1")
    m = RemoteModel(RemoteSpec.parse("http://h:1?retries=0"), VocabOnly(20000), OpenAICompletions(), "m", 4096, client)
    m.sent = sent  # type: ignore[attr-defined]
    m.sessions = [RemoteSession(m, [785, 6722, 315, 9625, 374]), RemoteSession(m, [16, 488, 16, 284])]  # type: ignore[attr-defined]
    return m


def test_named_tokens_fill_the_draft_distribution_exactly() -> None:
    m = _replaying_model(fixture("vllm_named")["response"])
    a, b = m.sessions  # type: ignore[attr-defined]
    m.step([a, b], [[], []])  # type: ignore[attr-defined]
    m.ensure([a, b], [[12095, 9454, 2753], [2753, 40]])  # type: ignore[attr-defined]
    la, lb = a.logits(), b.logits()
    named = m.sent[-1]  # type: ignore[attr-defined]
    assert named["logprob_token_ids"] == [9454, 2753, 40] and named["logprobs"] == 1  # 12095 is in a's top list
    assert la[12095] == pytest.approx(-0.0621) and la[9454] == pytest.approx(-0.02) and la[2753] == pytest.approx(-4.1)
    assert lb[2753] == pytest.approx(-0.3) and lb[40] == pytest.approx(-9999.0)
    assert la[5] == pytest.approx(-6.3121 - OUTSIDE_GAP)  # neither in the top list nor named: the floor


def test_a_server_that_ignores_named_tokens_is_not_asked_again() -> None:
    m = _replaying_model(None)  # answers the top list only, as vLLM before 0.26 does
    a, b = m.sessions  # type: ignore[attr-defined]
    m.ensure([a, b], [[9454], [40]])  # type: ignore[attr-defined]
    with pytest.warns(UserWarning, match="cannot return the log-probabilities of named tokens"):
        la = a.logits()
    assert la[9454] < -20 and m.named is False  # type: ignore[attr-defined]
    n = len(m.sent)  # type: ignore[attr-defined]
    a.extend([12095])
    m.ensure([a], [[9454]])  # type: ignore[attr-defined]
    a.logits()
    assert len(m.sent) == n + 1  # type: ignore[attr-defined]  # the next-token request only
