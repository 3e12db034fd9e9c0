"""The deployment config file: schema from the classes, one-line errors naming the key, flags over the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignbeam.cli import app
from alignbeam.config import knobs
from alignbeam.configfile import load_config, merged, schema
from alignbeam.errors import ConfigError
from alignbeam.modelspec import ModelOptions
from alignbeam.server.settings import ServerSettings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "alignbeam.yaml"
    p.write_text(text)
    return p


def test_every_knob_model_option_and_server_setting_is_a_key() -> None:
    s = schema()
    assert set(s["knobs"]) == {kn.name for kn in knobs()}
    assert set(s["models"]) == {f.name for f in dataclasses.fields(ModelOptions)}
    assert set(s["server"]) == {f.name for f in dataclasses.fields(ServerSettings)}


def test_a_full_file_is_read_with_types_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "s3cret")
    p = write(
        tmp_path,
        "models:\n  draft: smollm2-135m\n  n_threads: 2\n  policy: policy.txt\n"
        "knobs:\n  gate_threshold: 0.3\n  alpha: 1\n  stop: '###'\n  judge_after: null\n"
        "server:\n  port: 8080\n  api_key: ${MY_KEY}\n  shutdown_grace: 5\n"
        "calibration:\n  max_over_refusal: 0.05\n",
    )
    d = load_config(p)
    assert d.models == {"draft": "smollm2-135m", "n_threads": 2, "policy": Path("policy.txt")}
    assert d.knobs == {"gate_threshold": 0.3, "alpha": 1.0, "stop": ("###",), "judge_after": None}
    assert d.server == {"port": 8080, "api_key": "s3cret", "shutdown_grace": 5.0}
    assert d.calibration == {"max_over_refusal": 0.05}
    shown = merged(d, {"alpha": 0.6})
    assert shown["knobs"]["alpha"] == 0.6 and shown["knobs"]["gate_threshold"] == 0.3  # flags over the file
    assert shown["server"]["api_key"] == "***" and shown["server"]["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("knobs:\n  alpah: 0.3\n", "unknown key knobs.alpah: did you mean 'alpha'?"),
        ("serveur:\n  port: 1\n", "unknown section 'serveur': did you mean 'server'?"),
        ("server:\n  prot: 1\n", "unknown key server.prot: did you mean 'port'?"),
        ("knobs:\n  alpha: high\n", "knobs.alpha must be a number, got 'high'"),
        ("knobs:\n  k: 2.5\n", "knobs.k must be an integer, got 2.5"),
        ("knobs:\n  gate: 'yes'\n", "knobs.gate must be true/false, got 'yes'"),
        ("models:\n  draft: 3\n", "models.draft must be a string, got 3"),
        ("knobs:\n  alpha: 3.0\n", "knobs: alpha must be between 0 and 1"),
        (
            "server:\n  api_key: ${ALIGNBEAM_TEST_UNSET_VAR}\n",
            "the environment variable ALIGNBEAM_TEST_UNSET_VAR is not set",
        ),
        ("knobs: [1, 2]\n", "section 'knobs' must be a mapping"),
        ("- a\n", "must be a mapping of sections"),
        ("knobs:\n  alpha: [\n", "is not valid YAML (line 3)"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "nope.yaml")


def test_the_cli_reads_the_file_and_flags_override_it(tmp_path: Path) -> None:
    p = write(tmp_path, "models:\n  anchor: qwen2.5-coder-0.5b\nknobs:\n  alpha: 0.3\n  k: 5\nserver:\n  port: 9000\n")
    runner = CliRunner()
    out = runner.invoke(app, ["config", "show", "--config", str(p), "--alpha", "0.9"])
    assert out.exit_code == 0, out.output
    assert "alpha: 0.9" in out.output and "k: 5" in out.output and "port: 9000" in out.output
    assert "anchor: qwen2.5-coder-0.5b" in out.output
    bad = write(tmp_path, "knobs:\n  alpah: 1\n")
    for command in (["generate", "hi"], ["serve"], ["chat"], ["eval"]):
        r = runner.invoke(app, [*command, "--config", str(bad)])
        assert r.exit_code != 0 and "did you mean 'alpha'" in str(r.exception or r.output), command
