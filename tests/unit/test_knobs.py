"""Every knob lives in AlignBeamConfig; the CLI, the server schema and the README table are derived from it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from alignbeam.cli import app
from alignbeam.config import AlignBeamConfig, knobs, markdown_table
from alignbeam.server import schemas as S
from alignbeam.server import validation as V

README = Path(__file__).resolve().parents[2] / "README.md"
KNOB_COMMANDS = ("generate", "chat", "serve")
MODEL_COMMANDS = ("generate", "chat", "serve", "eval")
MODEL_OPTIONS = (
    "--draft",
    "--anchor",
    "--judge",
    "--judge-method",
    "--judge-url",
    "--policy",
    "--engine",
    "--n-threads",
    "--preset",
)


def _options(command: str) -> dict[str, Any]:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {opt: p for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("command", KNOB_COMMANDS)
def test_every_config_field_is_a_cli_option(command: str) -> None:
    opts = _options(command)
    for kn in knobs():
        assert kn.option in opts, f"{command} lacks {kn.option}"
        param = opts[kn.option]
        assert param.name == kn.name
        if kn.type is bool:
            assert f"--no-{kn.option[2:]}" in opts, f"{command}: {kn.name} should be a --x/--no-x flag"
        if kn.short:
            assert kn.short in opts


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_command_that_loads_models_takes_the_same_model_options(command: str) -> None:
    opts = _options(command)
    missing = [o for o in MODEL_OPTIONS if o not in opts]
    assert not missing, f"{command} lacks {missing}"


def test_server_schema_has_exactly_the_request_knobs() -> None:
    fields = set(S.ChatCompletionRequest.model_fields) & set(S.CompletionRequest.model_fields)
    for kn in knobs():
        name = kn.openai or kn.name
        if kn.request:
            assert name in fields, f"the server schema lacks {name} ({kn.name})"
        else:
            assert kn.name not in fields, f"{kn.name} is not request-settable but the schema has it"


def test_request_knobs_reach_the_config_overrides() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "stop": "x"}
    body |= {"alpha": 0.3, "k": 2, "gate": True, "select": "helpful", "gate_threshold": 0.4}
    req = V.parse(S.ChatCompletionRequest, body)
    cfg = AlignBeamConfig().merged(**req.overrides(256, 6))
    assert (cfg.alpha, cfg.k, cfg.gate, cfg.select, cfg.gate_threshold) == (0.3, 2, True, "helpful", 0.4)
    assert cfg.max_new_tokens == 9 and cfg.stop == ("x",)


def test_readme_knob_table_is_the_generated_one() -> None:
    text = README.read_text()
    m = re.search(r"<!-- knobs:begin[^\n]*-->\n(.*?)\n<!-- knobs:end -->", text, re.S)
    assert m, "README.md has no knobs:begin / knobs:end markers"
    assert m.group(1).strip() == markdown_table(), (
        "README knob table is out of date: replace it with `python -m alignbeam.config --markdown`"
    )


def test_markdown_table_has_a_row_per_field() -> None:
    rows = markdown_table().splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == [kn.name for kn in knobs()]
    assert all(kn.help for kn in knobs())
    # grouped in the help and the table: every knob in one of the groups, the groups in their order
    from alignbeam.config import GROUPS

    seen = [kn.group for kn in knobs()]
    assert set(seen) == set(GROUPS) and seen == sorted(seen, key=GROUPS.index)


def test_bad_knob_is_reported_before_any_model_loads() -> None:
    r = CliRunner().invoke(app, ["generate", "hi", "--alpha", "3", "--draft", "no-such-model"])
    assert r.exit_code == 2
    assert "alpha must be between 0 and 1" in r.output and "unknown model" not in r.output


def test_a_stricter_gate_recentres_the_request_risk_on_itself() -> None:
    from alignbeam.method.route import recentred

    # the threshold becomes the classifier's midpoint; the order of requests is kept
    assert recentred(0.2, 0.2, 0.5) == pytest.approx(0.5)
    assert recentred(0.5, 0.2, 0.5) == pytest.approx(0.8)
    assert recentred(0.05, 0.2, 0.5) == pytest.approx(0.05 * 4 / (0.95 + 0.05 * 4))
    xs = [recentred(p, 0.1, 0.5) for p in (0.01, 0.1, 0.3, 0.9, 0.999)]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(xs))
    # the judge's own gate or a looser one: the judge's read stands (None); no risk, nothing to re-centre
    assert recentred(0.3, 0.5, 0.5) is None and recentred(0.3, 0.7, 0.5) is None
    assert recentred(None, 0.2, 0.5) is None and recentred(0.3, None, 0.5) is None
    assert recentred(0.3, 0.2, None) is None
    # gate_threshold 0 flags every request, and every request is then judged as harmful
    zero = recentred(1e-6, 0.0, 0.5)
    assert zero is not None and zero > 0.99
