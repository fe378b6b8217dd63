from __future__ import annotations

import json

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


def test_eval_links_prints_the_spread_over_shuffled_orders(tmp_path):
    quake = "A magnitude 6.1 earthquake struck Qeshm island in southern Iran on Sunday, killing {n} people, state media said."
    vote = "Turkmenistan held a parliamentary election on Sunday; the election commission said turnout was {n} percent."
    rows = [{"id": f"q{n}", "text": quake.format(n=n), "story": "quake"} for n in (3, 4, 5)]
    rows += [{"id": f"v{n}", "text": vote.format(n=n), "story": "vote"} for n in (91, 93, 94)]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["eval-links", str(path), "--orders", "4", "--worst", "0"])
    assert result.exit_code == 0, result.output
    assert "BCubed F1 over 4 shuffled orders (6 undated articles moved): mean" in result.output
    assert runner.invoke(app, ["eval-links", str(path), "--orders", "-1"]).exit_code == 2
    for dates in ("same", "spread"):
        result = runner.invoke(app, ["eval-links", str(path), "--orders", "3", "--worst", "0", "--dates", dates])
        assert result.exit_code == 0, result.output
        assert f"BCubed F1 over 3 orders with '{dates}' dates: mean" in result.output
    assert runner.invoke(app, ["eval-links", str(path), "--dates", "same"]).exit_code == 2  # needs --orders
    assert runner.invoke(app, ["eval-links", str(path), "--orders", "2", "--dates", "weekly"]).exit_code == 2
    dated = tmp_path / "dated.jsonl"
    dated.write_text("".join(json.dumps({**r, "published": "2024-03-12"}) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["eval-links", str(dated), "--orders", "2", "--dates", "same"])
    assert result.exit_code == 2 and "6 line(s)" in result.output and "published" in result.output


def test_eval_links_names_the_join_where_a_merge_began(tmp_path):
    # the same quake report twice, labelled as two stories: the copy joins the first (a merge)
    text = "A magnitude 6.1 earthquake struck Qeshm island in southern Iran on Sunday, killing 3 people, state media said."
    rows = [{"id": "a", "text": text, "story": "first"}, {"id": "b", "text": text, "story": "second"}]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["eval-links", str(path), "--worst", "3"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "joins where a merge began: 1, 1 of them by the first article of its gold story" in out
    assert "(second, first of its story) joined a story of 1 article(s) of first, as a near-duplicate" in out
    quiet = runner.invoke(app, ["eval-links", str(path), "--worst", "0"])
    assert quiet.exit_code == 0 and "joins where a merge began" not in quiet.output
