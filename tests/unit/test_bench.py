"""The benchmark harness: its arithmetic, its article stream and its results document, plus one
smoke run of ``crosswire bench --quick`` through the embedded stack."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import bench
from pipeline.bench import (
    Rate,
    Target,
    generate_article,
    generate_articles,
    growth,
    hop_latencies,
    latencies_alert,
    latencies_indexed,
    percentiles,
    perturb,
    process_memory,
    ratio,
    stage_seconds,
    summarise,
    targets,
)
from tests.conftest import REPO, SEEDS

BASE = [
    {"id": "a", "title": "Quake hits town", "text": "Quake hits town\nAt least 12 people died.\nRescuers searched.\nPolice said 3 were missing.", "source": "AP"},
    {"id": "b", "text": "Storm floods city\nWater rose 2 metres.\nThe mayor spoke.\nSchools closed for 4 days."},
    {"id": "c", "text": "Election held\nTurnout was 61 percent.\nResults come on Monday."},
]


# ------------------------------------------------------------------------------------ maths


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_match_numpy(xs: list[float]) -> None:
    p = percentiles(xs)
    for q in (50, 95, 99):
        assert p[f"p{q}"] == pytest.approx(float(np.percentile(xs, q)), rel=1e-9, abs=1e-6)
    assert p["max"] == max(xs)
    assert p["n"] == len(xs)
    assert p["p50"] <= p["p95"] <= p["p99"] <= p["max"]


def test_percentiles_of_nothing_are_nan_with_zero_count() -> None:
    p = percentiles([])
    assert p["n"] == 0
    assert all(math.isnan(p[k]) for k in ("p50", "p95", "p99", "max"))


def test_ratio_and_growth() -> None:
    assert ratio(9.0, 10.0) == pytest.approx(0.9)
    assert ratio(None, 10.0) is None and ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None and ratio(1.0, math.nan) is None
    assert growth(100.0, 110.0) == pytest.approx(0.1)
    assert growth(100.0, 90.0) == pytest.approx(-0.1)
    assert growth(None, 1.0) is None


def test_rate_per_second_and_json() -> None:
    r = Rate("x", 1, articles=50, words=20_000, seconds=4.0)
    assert r.articles_per_s == 12.5 and r.words_per_s == 5000.0
    assert r.to_json()["articles_per_s"] == 12.5
    assert math.isnan(Rate("x", 1, 1, 1, 0.0).articles_per_s)


def test_target_verdicts() -> None:
    assert Target("r", 0.95, 0.9, at_least=True).met is True
    assert Target("r", 0.85, 0.9, at_least=True).met is False
    assert Target("p99", 0.8, 1.0, at_least=False).met is True
    assert Target("p99", 1.2, 1.0, at_least=False).met is False
    assert Target("x", None, 1.0, at_least=True).met is None
    assert Target("x", math.nan, 1.0, at_least=True).met is None


# ---------------------------------------------------------------------------------- articles


def test_generation_is_deterministic_and_ids_unique() -> None:
    a = generate_articles(BASE, 0, 300, seed=7)
    assert a == generate_articles(BASE, 0, 300, seed=7)
    assert [generate_article(BASE, i, 7) for i in (5, 120)] == [a[5], a[120]]
    assert len({x["id"] for x in a}) == 300
    other = generate_articles(BASE, 0, 300, seed=8)
    assert not {x["id"] for x in a} & {x["id"] for x in other}


def test_first_articles_are_each_base_text_once_then_copies() -> None:
    a = generate_articles(BASE, 0, 60, seed=3)
    assert sorted(x["text"] for x in a[: len(BASE)]) == sorted(b["text"] for b in BASE)
    base_lines = [set(b["text"].split("\n")) for b in BASE]
    for x in a[len(BASE):]:
        # a copy keeps its headline and all but at most one changed and one dropped line
        lines = x["text"].split("\n")
        assert any(lines[0] == b["text"].split("\n")[0] and len(set(lines) - bl) <= 1 for b, bl in zip(BASE, base_lines))
    assert any(x["text"] not in {b["text"] for b in BASE} for x in a)  # some copies are perturbed
    assert all(x.get("source") for x in a)


def test_generation_from_the_real_seeds_and_ecb(tmp_path: Path) -> None:
    seeds_only = bench.load_base_articles(ecb=None)
    assert len(seeds_only) == len(list(SEEDS.glob("*.txt")))
    assert all(len(b["text"]) > 200 for b in seeds_only)
    ecb = tmp_path / "ecb.jsonl"
    ecb.write_text(json.dumps({"id": "e1", "title": "T", "text": "Body text.", "story": "gold"}) + "\n\n", encoding="utf-8")
    mixed = bench.load_base_articles(ecb=ecb)
    assert len(mixed) == len(seeds_only) + 1
    assert "story" not in mixed[-1]  # the gold label never reaches the pipeline


@given(st.text(alphabet="ab 12\n3.", max_size=200), st.integers(0, 2**32))
@settings(max_examples=150)
def test_perturb_changes_at_most_one_number_and_one_line(text: str, seed: int) -> None:
    out = perturb(text, random.Random(seed))
    assert out == perturb(text, random.Random(seed))
    assert len(text.split("\n")) - len(out.split("\n")) in (0, 1)
    assert abs(len(out) - len(text)) <= len(text)


def test_prepare_text_is_what_the_analyser_reads() -> None:
    from pipeline.analyse import Analyser
    from pipeline.types import Article

    class NoNLP:  # a non-English article never reaches spaCy, so no model is needed
        def pipe(self, texts, batch_size=32):
            return iter([t for t in texts if False])

    art = {"id": "x", "title": "Séisme", "text": "Séisme à Lyon\n\nIl y a eu  12 blessés.\n", "language": "fr"}
    analysed = Analyser(NoNLP()).analyse([Article(**art)])[0]  # type: ignore[arg-type]
    assert bench.prepare_text(art) == analysed.clean_text


# ---------------------------------------------------------------------------------- latencies


def test_indexed_latencies_pair_by_article() -> None:
    produced = {"a": 10.0, "b": 11.0, "c": 12.0}
    assert sorted(latencies_indexed(produced, {"a": 10.5, "b": 13.0, "z": 99.0})) == [0.5, 2.0]


def _alert(arts: list[list[str]], sent: datetime | None, created: datetime | None = None) -> dict:
    body = {"sides": [{"articles": a} for a in arts]}
    return {"body": json.dumps(body), "sent": sent.isoformat() if sent else None, "created": created.isoformat() if created else None}


def test_alert_latency_runs_from_the_last_article_of_the_contradiction() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ts = t0.timestamp()
    earlier = {"old": ts - 100}
    produced = {"a": ts, "b": ts + 1}
    alerts = [
        _alert([["a"], ["b"]], t0 + timedelta(seconds=3)),  # completed by b: 2 s
        _alert([["old"], ["a"]], None, t0 + timedelta(seconds=0.5)),  # created only; completed by a: 0.5 s
        _alert([["old"], ["gone"]], t0),  # an article nobody produced: left out
    ]
    assert sorted(latencies_alert(produced, alerts, earlier)) == pytest.approx([0.5, 2.0])
    assert latencies_alert(produced, [_alert([["old"]], t0)], earlier) == []  # an earlier phase's alert


def test_hop_latencies_chain_in_order() -> None:
    produced = {"a": 0.0, "b": 1.0}
    hops = hop_latencies(produced, [("analysed", {"a": 0.5, "b": 1.25}), ("indexed", {"a": 1.5, "b": 2.25})])
    assert list(hops) == ["produce → analysed", "analysed → indexed"]
    assert hops["produce → analysed"]["max"] == 0.5 and hops["produce → analysed"]["n"] == 2
    assert hops["analysed → indexed"]["p50"] == 1.0


# ---------------------------------------------------------------------------------- processes


def test_process_memory_reads_this_process() -> None:
    m = process_memory(os.getpid())
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc")
    assert m["rss"] > 10_000_000 and m["peak_rss"] >= m["rss"]
    assert process_memory(2**22 + 12345) == {}


def test_stage_seconds_reads_the_worker_histograms() -> None:
    from prometheus_client import generate_latest

    from pipeline.metrics import Metrics

    m = Metrics.create()
    m.stage_seconds.labels("nlp").observe(1.5)
    m.stage_seconds.labels("nlp").observe(0.5)
    m.stage_seconds.labels("index").observe(0.25)
    assert stage_seconds(generate_latest(m.registry).decode()) == {"nlp": 2.0, "index": 0.25}


def test_state_bytes_reads_the_worker_gauge() -> None:
    from prometheus_client import generate_latest

    from pipeline.metrics import Metrics

    m = Metrics.create()
    assert bench.state_bytes(generate_latest(m.registry).decode()) == {}  # not refreshed yet
    m.state_bytes.labels("link").set(2_500_000)
    m.state_bytes.labels("story").set(40_000)
    assert bench.state_bytes(generate_latest(m.registry).decode()) == {"link": 2_500_000, "story": 40_000}


def test_metric_total_sums_every_label() -> None:
    from prometheus_client import generate_latest

    from pipeline.metrics import Metrics

    m = Metrics.create()
    assert bench.metric_total(generate_latest(m.registry).decode(), "crosswire_partition_reseeks_total") == 0
    m.reseeks.labels("crosswire-articles", "1").inc(2)
    m.reseeks.labels("crosswire-linked", "1").inc()
    assert bench.metric_total(generate_latest(m.registry).decode(), "crosswire_partition_reseeks_total") == 3


# ---------------------------------------------------------------------------------- results


def _rate(label: str, procs: int, aps: float) -> dict:
    return Rate(label, procs, articles=int(aps * 10), words=int(aps * 3000), seconds=10.0).to_json()


def _results(e2e1: float = 9.0, e2e2: float = 16.0, rss: tuple[int, int] = (400, 420)) -> dict:
    return {
        "schema": bench.RESULTS_SCHEMA,
        "machine": {"cores": 2, "cpu": "x"},
        "settings": {"articles": 100, "growth_factor": 5},
        "limit": {"nlp_pipe_1": _rate("nlp.pipe", 1, 10.0), "analyser_1": _rate("Analyser", 1, 9.5),
                  "nlp_pipe_2": _rate("nlp.pipe, 2 processes", 2, 18.0)},
        "end_to_end": {
            "workers_1": {"workers": 1, "rate": _rate("end to end, 1 worker", 1, e2e1), "memory_at_n": [{"rss": rss[0]}],
                          "memory_at_growth": [{"rss": rss[1]}], "growth_articles": 500, "memory_end": [{"peak_rss": 500}],
                          "rss_samples": [[0, [300]], [100, [400]]],
                          "state_bytes_at_n": {"link": 2e6, "story": 5e5}, "state_bytes_at_growth": {"link": 6e6, "story": 9e5},
                          "busy_after_indexed_s_at_n": 0.5, "busy_after_indexed_s_at_growth": 41.0, "reseeks": 2,
                          "latency": {"load": 0.5, "target_rate": 4.5, "indexed_s": percentiles([0.2, 0.4, 1.5]),
                                      "alert_s": percentiles([0.3]), "hops_s": {"produce → analysed": percentiles([0.1])},
                                      "search_alone": {"documents": 3, "write_s": percentiles([0.01, 0.02, 1.7]), "over_1s": 1,
                                                       "slowest_at": 3}}},
            "workers_2": {"workers": 2, "rate": _rate("end to end, 2 workers", 2, e2e2), "memory_end": [{"peak_rss": 450}, {"peak_rss": 460}]},
        },
    }


def test_summarise_derives_ratio_speedup_and_growth() -> None:
    r = _results()
    s = summarise(r)
    assert s["ratio"]["workers_1"] == pytest.approx(0.9)
    assert s["ratio"]["workers_2"] == pytest.approx(16 / 18)
    assert s["scale_out"]["speedup"] == pytest.approx(16 / 9)
    assert s["memory"]["growth"] == pytest.approx(0.05)
    assert s["memory"]["peak_rss_per_worker"] == {"workers_1": [500], "workers_2": [450, 460]}
    r.update(s)
    verdicts = {t.name: t.met for t in targets(r)}
    assert list(verdicts.values()) == [True, False, True, True]  # p99 1.5 s is over 1 s


def test_memory_growth_is_read_at_rest_when_measured() -> None:
    r = _results(rss=(400, 600))  # under load: the heap of the last batches, +50%
    one = r["end_to_end"]["workers_1"]
    one["rest_rss_at_n"], one["rest_rss_at_growth"] = [300], [318]
    m = summarise(r)["memory"]
    assert (m["rss_small"], m["rss_large"]) == (300, 318) and m["growth"] == pytest.approx(0.06)
    assert m["method"].startswith("worker RSS at rest")
    assert m["growth_under_load"] == pytest.approx(0.5)  # still reported beside it
    del one["rest_rss_at_growth"]  # no reading at 5N: fall back to the medians under load
    m = summarise(r)["memory"]
    assert m["growth"] == pytest.approx(0.5) and m["method"].startswith("median")


def test_the_ratio_against_a_single_threaded_process_is_reported_beside() -> None:
    r = _results()
    assert "workers_1_vs_single_thread" not in summarise(r)["ratio"]  # not measured: not reported
    r["limit"]["nlp_pipe_1_single_thread"] = _rate("nlp.pipe, fresh single-threaded process", 1, 12.0)
    s = summarise(r)
    assert s["ratio"]["workers_1_vs_single_thread"] == pytest.approx(0.75)
    assert s["ratio"]["workers_1"] == pytest.approx(0.9)  # the target's ratio is still the worker-like limit's


def test_summarise_without_scale_out_or_growth() -> None:
    r = _results()
    del r["end_to_end"]["workers_2"]
    del r["end_to_end"]["workers_1"]["memory_at_growth"]
    s = summarise(r)
    assert "scale_out" not in s and s["memory"]["growth"] is None
    r.update(s)
    assert [t.met for t in targets(r)][2:] == [None, None]


def test_results_file_is_strict_json_and_the_outputs_render(tmp_path: Path) -> None:
    from rich.console import Console

    r = _results()
    r.update(summarise(r))
    r["end_to_end"]["workers_1"]["latency"]["alert_s"] = percentiles([])  # NaNs
    r["targets"] = [t.to_json() for t in targets(r)]
    path = bench.write_results(r, tmp_path / "out" / "results.json")
    loaded = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert loaded["latency"]["alert_s"]["p50"] is None
    assert {"schema", "machine", "settings", "limit", "end_to_end", "ratio", "scale_out", "latency", "memory", "targets"} <= loaded.keys()
    png = bench.write_plots(loaded, tmp_path / "bench.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = Console(record=True, width=160)
    console.print(bench.results_table(loaded))
    text = console.export_text()
    assert "end to end, 2 workers" in text and "not met" in text
    assert "per-story state in the tables" in text and "link 2.0 → 6.0 MB, story 0.5 → 0.9 MB" in text
    assert "worker busy after the last article indexed" in text and "0 s at N, 41 s at 500" in text
    assert "partitions re-read as stalled" in text and "2 (each processes" in text
    assert "search server alone" in text and "max 1.70 s (write 3 of 3); 1 write(s) over 1 s" in text


# ---------------------------------------------------------------------------------- smoke


@pytest.mark.integration
@pytest.mark.slow
def test_quick_bench_end_to_end(tmp_path: Path) -> None:
    """The whole command on 40 articles through the embedded stack and one worker (the 2-worker
    run is the same code with another count; it would add a second worker start-up)."""
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "bench", "--quick", "--workers", "1", "--no-limit-processes", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((out / "results.json").read_text())
    assert r["schema"] == bench.RESULTS_SCHEMA and r["settings"]["articles"] == 40
    assert r["limit"]["nlp_pipe_1"]["articles_per_s"] > 0 and r["limit"]["analyser_1"]["words"] > 1000
    assert r["limit"]["nlp_pipe_1_single_thread"]["articles_per_s"] > 0 and r["ratio"]["workers_1_vs_single_thread"] > 0
    one = r["end_to_end"]["workers_1"]
    assert one["rate"]["articles"] == 40 and one["rate"]["articles_per_s"] > 0
    assert r["latency"]["indexed_s"]["n"] == 20 and r["latency"]["indexed_s"]["p50"] > 0
    held0, held1 = r["memory"]["state_bytes_small"], r["memory"]["state_bytes_large"]
    assert held0["link"] > 0 and held0["story"] > 0 and held1["link"] >= held0["link"]  # 2N articles hold more
    assert one["reseeks"] == 0  # no partition looked stalled in a healthy run
    # RSS at rest is read only once every stage went quiet, however long that took
    assert r["memory"]["busy_after_indexed_s_small"] >= 0 and r["memory"]["busy_after_indexed_s_large"] >= 0
    alone = r["latency"]["search_alone"]  # every article of the run rewritten, one request each
    assert alone["documents"] == 60 and alone["write_s"]["n"] == 60 and alone["write_s"]["p50"] > 0
    assert r["memory"]["articles_large"] == 80 and r["memory"]["rss_small"] > 0
    assert r["memory"]["method"].startswith("worker RSS at rest") and r["memory"]["rss_small_under_load"] > 0
    assert 0 < r["ratio"]["workers_1"]
    assert (out / "bench.png").stat().st_size > 1000
    assert "target:" in proc.stdout


def test_generated_records_pass_the_producer_validation() -> None:
    from pipeline.article import parse_article

    arts = generate_articles(BASE, 0, 10, seed=1)
    parsed = [parse_article(r.raw) for r in bench.to_records(arts)]
    assert [p.id for p in parsed] == [a["id"] for a in arts]
    assert [p.text for p in parsed] == [a["text"] for a in arts]


def test_link_cost_is_read_from_the_last_bench_links_output(tmp_path: Path) -> None:
    opts = bench.BenchOptions(out=tmp_path)
    assert bench._link_cost(opts, bench._noop) is None
    (tmp_path / "link-cost.json").write_text(json.dumps({"sizes": [{"live_stories": 1000, "p50_ms": 0.5}]}))
    got = bench._link_cost(opts, bench._noop)
    assert got is not None and got["sizes"][0]["live_stories"] == 1000 and "bench-links" in got["source"]


def test_window_rss_is_the_median_inside_the_window() -> None:
    samples = [(10, [100]), (20, [300]), (30, [200]), (40, [900]), (50, [0])]
    assert bench.window_rss(samples, 10, 40) == 300  # 300, 200, 900
    assert bench.window_rss(samples, 0, 20) == 200  # 100, 300
    assert bench.window_rss(samples, 40, 50) is None  # only an unreadable (0) sample
    assert bench.window_rss([], 0, 10) is None


def test_a_hop_that_carries_the_upstream_timestamp_is_not_a_hop_time() -> None:
    produced = {"a": 0.0, "b": 1.0}
    topic = {"a": 0.01, "b": 1.01}
    hops = hop_latencies(produced, [("articles", topic), ("analysed", dict(topic)), ("indexed", {"a": 2.01, "b": 3.01})])
    assert hops["articles → analysed"] == {"carried": True, "n": 0}
    assert hops["articles → indexed"]["p50"] == pytest.approx(2.0)


def test_process_cpu_seconds_grows_with_work_and_deltas_are_per_process():
    import os

    from pipeline.bench import cpu_delta, process_cpu_seconds

    before = process_cpu_seconds(os.getpid())
    assert before is not None and before > 0
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    after = process_cpu_seconds(os.getpid())
    assert after is not None and after - before >= 0.2
    assert process_cpu_seconds(2**22 + 12345) is None  # no such process
    d = cpu_delta({"workers": [1.0, 2.0], "broker": 5.0, "search": None, "bench": 1.0},
                  {"workers": [4.5, 2.5], "broker": 7.25, "search": 3.0, "bench": 1.5})
    assert d == {"workers": [3.5, 0.5], "broker": 2.25, "search": None, "bench": 0.5}
