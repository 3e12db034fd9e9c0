"""The server's request schemas and their mapping onto AlignBeam overrides, and the metrics page format (no models).

The mapping is where an OpenAI request becomes an AlignBeam call; a slip here (max_tokens not reaching
max_new_tokens, a knob dropped) would silently serve every request with the defaults.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError

from alignbeam.config import AlignBeamConfig
from alignbeam.server import schemas as S
from alignbeam.server import validation as V
from alignbeam.server.metrics import Metrics

MSG = [{"role": "user", "content": "hi"}]


def chat(**kw: object) -> S.ChatCompletionRequest:
    return S.ChatCompletionRequest.model_validate({"messages": MSG, **kw})


def test_standard_fields_and_knobs_map_to_config_overrides() -> None:
    req = chat(max_tokens=12, temperature=0.7, top_p=0.9, seed=3, stop="\n\n", alpha=0.3, k=2, n_mix=4, bridge="first")
    o = req.overrides(default_max_tokens=256, default_n_mix=6)
    assert o["max_new_tokens"] == 12 and o["temperature"] == 0.7 and o["top_p"] == 0.9 and o["seed"] == 3
    assert o["stop"] == ("\n\n",)
    assert (o["alpha"], o["k"], o["n_mix"], o["bridge"]) == (0.3, 2, 4, "first")
    cfg = AlignBeamConfig().merged(**o)  # unset knobs are None, which merged() ignores
    assert cfg.alpha == 0.3 and cfg.k == 2 and cfg.top_b == 50 and cfg.stop == ("\n\n",)


def test_defaults_and_max_completion_tokens() -> None:
    assert chat().overrides(100, 6)["max_new_tokens"] == 100
    assert chat(max_tokens=5, max_completion_tokens=9).overrides(100, 6)["max_new_tokens"] == 9
    assert chat(stop=["a", "b"]).overrides(100, 6)["stop"] == ("a", "b")


def test_short_max_tokens_shortens_an_unset_prefix_but_not_an_explicit_one() -> None:
    assert chat(max_tokens=4).overrides(256, 6)["n_mix"] == 4
    o = chat(max_tokens=4, n_mix=6).overrides(256, 6)
    with pytest.raises(Exception, match="n_mix"):
        AlignBeamConfig().merged(**o)


def test_invalid_knob_values_are_config_errors_with_the_field_in_the_message() -> None:
    from alignbeam.errors import ConfigError

    with pytest.raises(ConfigError, match="alpha must be between 0 and 1"):
        AlignBeamConfig().merged(**chat(alpha=5).overrides(16, 6))
    with pytest.raises(ConfigError, match="on_all_unsafe"):
        AlignBeamConfig().merged(**chat(on_all_unsafe="maybe").overrides(16, 6))


def test_unknown_field_names_the_field() -> None:
    with pytest.raises(ValidationError) as e:
        chat(aplha=0.5)
    msg, param = V.describe_validation_error(e.value)
    assert param == "aplha" and "unknown field 'aplha'" in msg and "alpha" in msg


def test_wrong_types_are_rejected_not_coerced() -> None:
    for bad in ({"k": 2.5}, {"k": "3"}, {"stream": "yes"}, {"return_trace": 1}, {"max_tokens": "8"}):
        with pytest.raises(ValidationError):
            chat(**bad)
    with pytest.raises(ValidationError) as e:
        S.ChatCompletionRequest.model_validate({})
    assert "missing required field 'messages'" in V.describe_validation_error(e.value)[0]


def test_unsupported_standard_fields() -> None:
    assert "only n=1" in (chat(n=2).unsupported() or "")
    assert chat(n=1, presence_penalty=0, frequency_penalty=0.0, user="u").unsupported() is None
    assert "presence_penalty" in (chat(presence_penalty=0.5).unsupported() or "")
    comp = S.CompletionRequest.model_validate({"prompt": ["a", "b"]})
    assert "one prompt" in (comp.unsupported() or "")
    assert S.CompletionRequest.model_validate({"prompt": ["a"]}).prompt_text() == "a"


def test_messages_developer_role_and_content_parts() -> None:
    req = S.ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]},
            ]
        }
    )
    assert req.prompt() == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    with pytest.raises(ValidationError):
        S.ChatCompletionRequest.model_validate({"messages": [{"role": "tool", "content": "x"}]})


def test_mode_and_finish_reason() -> None:
    assert chat().mode == "alignbeam" and chat(mode="draft").mode == "draft"
    with pytest.raises(ValidationError):
        chat(mode="anchor")
    assert S.finish_reason("refused") == "content_filter" and S.finish_reason("length") == "length"


def test_dump_leaves_out_unset_extras_but_keeps_null_finish_reason() -> None:
    chunk = S.ChatCompletionChunk(
        id="x", created=1, model="m", choices=[S.ChunkChoice(delta=S.ChunkDelta(content="a"))]
    )
    d = S.dump(chunk)
    assert "alignbeam_trace" not in d and "usage" not in d and d["choices"][0]["finish_reason"] is None


def test_metrics_text_format() -> None:
    m = Metrics(gauges={"alignbeam_queue_waiting": ("waiting", lambda: 2)})
    m.observe_request(
        "/v1/chat/completions",
        200,
        0.3,
        mode="alignbeam",
        prompt_tokens=10,
        completion_tokens=4,
        queue_wait_s=0.01,
        phases_ms={"judge": 120.0, "total": 300.0},
    )
    m.observe_request("/v1/chat/completions", 400, 0.001)
    text = m.render()
    assert 'alignbeam_requests_total{endpoint="/v1/chat/completions",status="200"} 1' in text
    assert 'alignbeam_requests_total{endpoint="/v1/chat/completions",status="400"} 1' in text
    assert 'alignbeam_tokens_total{kind="completion",mode="alignbeam"} 4' in text
    assert 'alignbeam_phase_duration_seconds_bucket{phase="judge",le="0.25"} 1' in text
    assert 'alignbeam_phase_duration_seconds_bucket{phase="judge",le="0.1"} 0' in text
    assert 'alignbeam_request_duration_seconds_count{endpoint="/v1/chat/completions",mode="alignbeam"} 1' in text
    assert "# TYPE alignbeam_queue_waiting gauge\nalignbeam_queue_waiting 2" in text
    # every sample line is "name{labels} value"
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value.replace("+Inf", "inf"))
            assert name.startswith("alignbeam_")


def test_gating_and_selection_knobs_reach_the_config() -> None:
    o = chat(gate=True, gate_threshold=0.7, include_draft=True, select="helpful").overrides(256, 6)
    cfg = AlignBeamConfig().merged(**o)
    assert cfg.gate and cfg.gate_threshold == 0.7 and cfg.include_draft and cfg.select == "helpful"
    with pytest.raises(ValidationError):
        chat(gate="yes")  # strict: not coerced


def test_relapse_cut_and_ignore_eos_reach_the_config() -> None:
    cfg = AlignBeamConfig().merged(**chat(relapse_cut=True, ignore_eos=True).overrides(256, 6))
    assert cfg.relapse_cut and cfg.ignore_eos
    cfg = AlignBeamConfig().merged(**chat().overrides(256, 6))
    assert not cfg.relapse_cut and not cfg.ignore_eos


def test_floats_are_strict_and_finite_but_take_json_integers() -> None:
    req = chat(temperature=1, top_p=1, alpha=1, judge_threshold=3)
    assert isinstance(req.temperature, float) and req.temperature == 1.0 and isinstance(req.alpha, float)
    for bad in (
        {"alpha": True},
        {"alpha": "0.3"},
        {"temperature": float("nan")},
        {"temperature": float("inf")},
        {"gate_threshold": float("-inf")},
        {"temperature": 2.01},
        {"temperature": -0.1},
        {"top_p": 0},
        {"seed": True},
        {"seed": 1.0},
    ):
        with pytest.raises(ValidationError):
            chat(**bad)
    assert chat(seed=-(2**100)).seed == -(2**100)  # any integer: the library maps it onto numpy's range


def test_validation_errors_are_one_sentence_naming_the_parameter() -> None:
    def describe(body: dict) -> tuple[str, str | None]:
        with pytest.raises(ValidationError) as e:
            S.ChatCompletionRequest.model_validate(body)
        return V.describe_validation_error(e.value)

    image = {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}
    assert describe({"messages": [image]}) == (
        "messages[0].content[1]: only text content parts are supported (these are text-only models)",
        "messages[0].content[1]",
    )
    msg, param = describe({"messages": [{"role": "user", "content": 5}]})
    assert param == "messages[0].content" and "more problem" not in msg  # no union noise
    assert describe({"messages": MSG, "alpha": True}) == ("alpha must be a number, got true", "alpha")
    assert describe({"messages": MSG, "stop": 3})[0] == "stop must be a string or an array of strings, got 3"
    assert describe({"messages": MSG, "tools": []})[1] == "tools"


def test_json_depth_counts_brackets_outside_strings_in_linear_time() -> None:
    assert V.json_depth(b'{"a": [[1], {"b": []}]}') == 5  # few brackets: the cheap bound
    assert V.json_depth(b'{"a": "' + b"[" * 1000 + b'"}') == 1
    assert V.json_depth(b'{"a": "\\"' + b"[" * 1000 + b'"}') == 1  # an escaped quote does not end the string
    assert V.json_depth(b"[" * 70 + b"]" * 70) == 70
    t0 = time.perf_counter()
    assert V.json_depth(b'"' + b'\\"[' * 1_000_000) == 0  # unterminated: no quadratic rescanning
    assert V.json_depth(b'[""' * 1_000_000) == 1_000_000
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    ("raw", "needle", "param"),
    [
        (b'{"temperature": NaN}', "NaN is not a JSON number", "temperature"),
        (b'{"a": [1, -Infinity]}', "-Infinity", "a[1]"),
        (b'{"top_p": 1e400}', "out of range", "top_p"),
        (b'{"max_tokens": ' + b"9" * 5000 + b"}", "max_tokens is over this server's limit of 8", "max_tokens"),
        (b'{"seed": -' + b"9" * 5000 + b"}", "too large", "seed"),
        (b'{"m": [{"x": 1, "x": 2}]}', "duplicate key 'x'", "m[0]"),
        (b'{"messages": [{"content": "\\udbff"}]}', "lone UTF-16 surrogate", "messages[0].content"),
        (b"[" * 100_000, "levels deep", None),
        (b"\xef\xbb\xbf{}", "byte-order mark", None),
        (b'{"a": "\xed\xa0\x80"}', "not valid UTF-8", None),
    ],
)
def test_decode_body_refuses_what_python_json_accepts(raw: bytes, needle: str, param: str | None) -> None:
    with pytest.raises(S.BadRequest) as e:
        V.decode_body(raw, max_tokens_limit=8)
    assert needle in str(e.value) and e.value.param == param and e.value.status == 400


def test_decode_body_keeps_valid_unicode_and_numbers() -> None:
    assert V.decode_body(b'{"a": "\\ud83d\\ude00", "b": [1, 2.5, -0.0, 1e308], "c": "[[{{"}') == {
        "a": "\U0001f600",
        "b": [1, 2.5, -0.0, 1e308],
        "c": "[[{{",
    }


def test_config_takes_any_integer_seed_and_only_finite_temperatures() -> None:
    from alignbeam.errors import ConfigError
    from alignbeam.method.choose import numpy_seed

    for seed in (-1, 0, 2**64, -(2**200)):
        AlignBeamConfig(seed=seed)
    for bad in ({"seed": True}, {"seed": 1.5}, {"temperature": float("nan")}, {"temperature": float("inf")}):
        with pytest.raises(ConfigError):
            AlignBeamConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="temperature"):
        AlignBeamConfig(temperature=True)
    assert numpy_seed(None) is None and numpy_seed(3) == 3 and numpy_seed(-1) == 2**64 - 1
    a = np.random.default_rng(numpy_seed(-7)).random(3)
    assert np.array_equal(a, np.random.default_rng(numpy_seed(-7)).random(3))  # deterministic
