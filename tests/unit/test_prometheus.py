"""Prometheus alert rules and the Grafana dashboard.

With promtool (Debian package ``prometheus``; ``.ci/run`` installs it) the rules are checked and
unit-tested (``deploy/prometheus/alerts.test.yml``), the Prometheus config is checked with its rule
file, and every dashboard query is parsed. Without it those tests are skipped with the reason.
The rest is plain Python and always runs: every metric the rules and the dashboard query is one the
workers export (pipeline/metrics.py), with labels it has; every alert carries a severity, the
annotations an operator needs, and a promtool test that makes it fire and one that keeps it silent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.metrics import Metrics
from tests.conftest import REPO

PROM_DIR = REPO / "deploy" / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
RULES = PROM_DIR / "alerts.yml"
RULE_TESTS = PROM_DIR / "alerts.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "crosswire.json"

SEVERITIES = {"warning", "critical"}
ANNOTATIONS = {"summary", "description", "runbook"}
# Series Prometheus makes itself, and the labels it attaches to every scraped series.
BUILTIN_METRICS = {"up": frozenset({"job", "instance"})}
TARGET_LABELS = frozenset({"job", "instance"})

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_METRIC = re.compile(r"(?<![\w:])(crosswire[_:][A-Za-z0-9_:]*|up)(?![\w:(])\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")


# --- helpers -----------------------------------------------------------------------------------


def exported_series() -> dict[str, frozenset[str]]:
    """Series name -> label names, for everything ``Metrics.create()`` registers. prometheus_client
    appends ``_total``/``_created`` to counters and ``_bucket``/``_sum``/``_count`` to histograms."""
    metrics = Metrics.create()
    labels_of: dict[str, frozenset[str]] = {}
    for name, value in vars(metrics).items():
        if name == "registry":
            continue
        # _labelnames is prometheus_client's own record of the declared labels (no public getter).
        labels_of[value._name] = frozenset(value._labelnames)  # noqa: SLF001
    series: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        labels = labels_of[family.name] | TARGET_LABELS
        if family.type == "counter":
            series |= {f"{family.name}_total": labels, f"{family.name}_created": labels}
        elif family.type == "histogram":
            series |= {family.name + s: labels for s in ("_sum", "_count", "_created")}
            series[f"{family.name}_bucket"] = labels | {"le"}
        else:
            series[family.name] = labels
    return series


def selectors(expr: str) -> Iterator[tuple[str, frozenset[str]]]:
    """(metric name, label names matched) for every series selector in a PromQL expression.

    Not a PromQL parser: it relies on every metric here being ``crosswire_*``, a ``crosswire:*``
    recording rule or ``up``, and drops quoted strings first so label values cannot look like names.
    Function calls (a name followed by ``(``) are not selectors."""
    text = _QUOTED.sub('""', expr)
    for m in _METRIC.finditer(text):
        yield m.group(1), frozenset(_MATCHER.findall(m.group(2) or ""))


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in all_rules() if "alert" in rule]


def recorded() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel except rows, including panels nested in collapsed rows."""
    out = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            out += panel.get("panels", [])
        else:
            out.append(panel)
    return out


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's template variables with values Prometheus accepts."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$__interval", "1m")
        .replace("$instance", ".*")
    )


def check_metric_names(exprs: list[str], where: str) -> None:
    series = exported_series() | {name: frozenset(labels) for name, labels in BUILTIN_METRICS.items()}
    records = recorded()
    for expr in exprs:
        found = list(selectors(expr))
        assert found, f"{where}: no metric in {expr!r}"
        for name, labels in found:
            if ":" in name:
                assert name in records, f"{where}: {name} is not a recording rule in {RULES.name}"
                continue
            assert name in series, f"{where}: {name} is not exported by pipeline/metrics.py"
            assert labels <= series[name], f"{where}: {name} has no label(s) {sorted(labels - series[name])}"


# --- promtool ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not installed (Debian package prometheus): "
            "apt-get install --no-install-recommends prometheus to check and unit-test the alert rules"
        )
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    out = run_promtool(promtool, "check", "rules", RULES)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(all_rules())} rules found" in out.stdout


def test_promtool_unit_tests(promtool: str) -> None:
    out = run_promtool(promtool, "test", "rules", RULE_TESTS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_check_config(promtool: str) -> None:
    out = run_promtool(promtool, "check", "config", CONFIG)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 1 rule files found" in out.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    # The checks above mean something only if promtool really parses PromQL.
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "rate(up[5m]"}]}]}))
    assert run_promtool(promtool, "check", "rules", bad).returncode != 0


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    # promtool has no expression checker; a recording rule per query makes it parse each one.
    rules = [{"record": f"dashboard:query{i}", "expr": grafana_to_promql(e)} for i, e in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run_promtool(promtool, "check", "rules", path)
    assert out.returncode == 0, out.stdout + out.stderr


# --- rules, without promtool ---------------------------------------------------------------------


def test_selectors_finds_names_and_labels_but_not_functions_or_values() -> None:
    expr = 'sum by (stage) (rate(crosswire_articles_total{stage="x", outcome=~"crosswire_fake|up"}[5m])) / on () up'
    assert list(selectors(expr)) == [
        ("crosswire_articles_total", frozenset({"stage", "outcome"})),
        ("up", frozenset()),
    ]
    assert list(selectors("time() - crosswire:stage_input:rate10m")) == [("crosswire:stage_input:rate10m", frozenset())]


def test_exported_series_follow_prometheus_client_suffixes() -> None:
    series = exported_series()
    assert series["crosswire_articles_total"] >= {"stage", "outcome"}
    assert "le" in series["crosswire_stage_seconds_bucket"]
    assert "crosswire_stage_seconds_count" in series and "crosswire_live_stories" in series
    assert "crosswire_articles" not in series and "crosswire_live_stories_total" not in series


def test_rule_metrics_are_exported() -> None:
    check_metric_names([rule["expr"] for rule in all_rules()], RULES.name)


def test_recording_rule_names_follow_the_convention() -> None:
    # level:metric:operations, so they cannot be mistaken for an exported series
    for name in recorded():
        assert re.fullmatch(r"crosswire:[a-z_0-9]+:[a-z_0-9]+", name), name


def test_every_alert_has_a_severity_and_the_annotations_an_operator_needs() -> None:
    # How the templates render is checked by the promtool unit tests (exact annotations).
    for rule in alerts():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        annotations = rule.get("annotations", {})
        assert ANNOTATIONS <= set(annotations), f"{rule['alert']}: missing {ANNOTATIONS - set(annotations)}"
        assert all(str(annotations[k]).strip() for k in ANNOTATIONS), rule["alert"]


def test_the_issue_asks_for_these_alerts() -> None:
    """Stalled consumer, dead-letter rate, alert delivery, Elasticsearch write errors, worker down."""
    used: dict[str, set[str]] = {}
    record_exprs = {rule["record"]: rule["expr"] for rule in all_rules() if "record" in rule}
    for rule in alerts():
        names = {name for name, _ in selectors(rule["expr"])}
        for name in list(names):  # see through recording rules
            if name in record_exprs:
                names |= {n for n, _ in selectors(record_exprs[name])}
        used.setdefault(rule["alert"], set()).update(names)
    expected = {
        "CrosswireConsumerStalled": "crosswire_articles_total",
        "CrosswireConsumerBehind": "crosswire_last_processed_timestamp_seconds",
        "CrosswireDeadLettersRising": "crosswire_dead_letters_total",
        "CrosswireAlertDeliveryFailing": "crosswire_alerts_total",
        "CrosswireElasticsearchWriteErrors": "crosswire_es_write_errors_total",
        "CrosswireWorkerDown": "up",
    }
    for alert, metric in expected.items():
        assert metric in used.get(alert, set()), f"{alert} should watch {metric}"


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    spec = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert spec["rule_files"] == [RULES.name]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in spec["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
            for exp in check.get("exp_alerts") or []:
                assert exp["exp_labels"]["severity"] in SEVERITIES
                assert set(exp["exp_annotations"]) == ANNOTATIONS
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "alerts never seen firing in alerts.test.yml"
    assert names - silent == set(), "alerts never seen silent in alerts.test.yml"
    assert (fires | silent) <= names, "alerts.test.yml names an alert that does not exist"


def test_prometheus_loads_the_rules() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [(CONFIG.parent / f).resolve() for f in config["rule_files"]] == [RULES.resolve()]


# --- Grafana dashboard ---------------------------------------------------------------------------


def test_dashboard_structure() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"]
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = dashboard_panels()
    assert len(panels) >= 10
    ids = [p["id"] for p in dash["panels"]] + [p["id"] for row in dash["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert all(t.get("datasource", panel["datasource"]) == panel["datasource"] for t in panel["targets"])
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_covers_the_pipeline() -> None:
    exprs = "\n".join(dashboard_exprs())
    for metric in (
        "crosswire_articles_total",
        "crosswire_stage_seconds_bucket",
        "crosswire_dead_letters_total",
        "crosswire_live_stories",
        "crosswire_contradictions_total",
        "crosswire_alerts_total",
        "crosswire_es_write_errors_total",
    ):
        assert metric in exprs, metric
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs


def test_dashboard_metrics_are_exported() -> None:
    check_metric_names(dashboard_exprs(), DASHBOARD.name)
