from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


@pytest.mark.parametrize("cmd", ["up", "worker", "init", "produce", "stories", "contradictions", "replay", "eval-links", "eval-claims", "bench-links", "demo", "config"])
def test_every_command_explains_itself(cmd):
    result = runner.invoke(app, [cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 200


def test_help_and_config_never_show_secrets(monkeypatch):
    secret = "https://hooks.slack.com/services/T1/B1/very-secret-token"
    monkeypatch.setenv("CROSSWIRE_SLACK_WEBHOOK_URL", secret)
    monkeypatch.setenv("CROSSWIRE_ES_PASSWORD", "hunter2-secret")
    for args in (["--help"], ["config"], ["worker", "--help"]):
        out = runner.invoke(app, args).output
        assert "very-secret-token" not in out and "hunter2-secret" not in out
    assert "(set, hidden)" in runner.invoke(app, ["config"]).output


def test_produce_reports_missing_path_clearly(tmp_path):
    result = runner.invoke(app, ["produce", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_bad_configuration_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CROSSWIRE_TOPIC_PARTITIONS", "zero")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2 and "invalid configuration" in result.output
