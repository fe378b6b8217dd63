from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.benchlink import (
    BenchResult,
    SizeResult,
    SyntheticCorpus,
    deep_size,
    fit_line,
    results_table,
    run_benchmark,
    run_retirement,
    run_size,
    write_json,
    write_plot,
)
from pipeline.cli import app
from pipeline.link import LinkerConfig


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return SyntheticCorpus(seed=7)


@pytest.fixture(scope="module")
def small_bench() -> BenchResult:
    # Tiny sizes: checks the shape of the results, never the speed.
    # Each size in a fresh interpreter, as the real benchmark does: resident-set growth measured
    # inside a long test session is noise (memory freed by earlier tests gets reused).
    return run_benchmark([2000, 200], probe=50, seed=11, build="link", isolate=True)


def test_articles_are_deterministic_and_independent_of_call_order(corpus: SyntheticCorpus) -> None:
    later = corpus.article(5000, 3)
    other = SyntheticCorpus(seed=7)
    other.article(12, 0)  # a different history of calls must not change anything
    assert other.article(5000, 3) == later
    assert SyntheticCorpus(seed=8).article(5000, 3) != later
    assert corpus.article(5000, 4) != later


def test_articles_of_one_story_share_topic_and_entities_more_than_two_stories(corpus: SyntheticCorpus) -> None:
    a, b, c = corpus.article(40, 0), corpus.article(40, 1), corpus.article(41, 0)

    def overlap(x: tuple[str, ...], y: tuple[str, ...]) -> float:
        return len(set(x) & set(y)) / len(set(x) | set(y))

    assert overlap(a.body_tokens, b.body_tokens) > overlap(a.body_tokens, c.body_tokens)
    assert overlap(a.body_entities, b.body_entities) > overlap(a.body_entities, c.body_entities)
    assert a.title_tokens and a.title_entities and a.numbers
    assert len(a.fingerprint) > 0 and len(a.numbers) == len(set(a.numbers))


def test_strings_are_fresh_objects_per_article(corpus: SyntheticCorpus) -> None:
    # Shared string objects would understate a story's memory.
    a, b = corpus.article(3, 0), corpus.article(3, 1)
    common = set(a.body_tokens) & set(b.body_tokens)
    assert common
    word = next(iter(common))
    ia = next(t for t in a.body_tokens if t == word)
    ib = next(t for t in b.body_tokens if t == word)
    assert ia is not ib


def test_entity_popularity_is_zipfian(corpus: SyntheticCorpus) -> None:
    # A few pool entities appear in many stories (long postings), most in very few.
    per_story = Counter(e for s in range(3000) for e in set(corpus.story(s).entities))
    counts = sorted(per_story.values(), reverse=True)
    assert counts[0] >= 100  # the "United States" of the pool: in a few % of all stories
    assert sum(1 for c in counts if c == 1) > len(counts) / 2


def test_story_specs_do_not_depend_on_how_many_stories_are_built() -> None:
    a = SyntheticCorpus(seed=3)
    b = SyntheticCorpus(seed=3)
    b.story(5000)
    assert a.story(1500).entities == b.story(1500).entities
    assert list(a.story(1500).terms) == list(b.story(1500).terms)


def test_benchmark_results_have_the_promised_structure(small_bench: BenchResult) -> None:
    sizes = [r.target_stories for r in small_bench.sizes]
    assert sizes == sorted(sizes) == [200, 2000]
    for r in small_bench.sizes:
        assert isinstance(r, SizeResult)
        assert 0 < r.live_stories <= r.target_stories
        assert r.live_stories + r.merged_seeds == r.target_stories
        assert r.probes == 50
        assert 0 < r.p50_ms <= r.p95_ms <= r.max_ms
        assert r.mean_ms > 0 and r.cpu_mean_ms > 0 and r.build_per_second > 0
        assert 0.0 <= r.join_accuracy <= 1.0 and 0.0 <= r.new_accuracy <= 1.0
        assert r.story_bytes_sampled > 0 and set(r.story_breakdown) >= {"vectors", "df"}
    assert small_bench.time_ratio == pytest.approx(small_bench.sizes[-1].mean_ms / small_bench.sizes[0].mean_ms)
    assert small_bench.max_candidates == LinkerConfig().max_candidates


def test_candidates_per_article_stay_bounded_by_the_index_cap(small_bench: BenchResult) -> None:
    cap = small_bench.max_candidates
    for r in small_bench.sizes:
        assert 0 < r.candidates_mean <= cap
        assert r.candidates_max <= cap
    # The cap binds: with 2,000 stories the index offers more than it lets through.
    assert small_bench.sizes[-1].candidates_max == cap


def test_the_synthetic_stories_are_distinct_and_linkable(small_bench: BenchResult) -> None:
    # Not a quality gate: a sanity check that the corpus looks like news to the linker.
    big = small_bench.sizes[-1]
    assert big.merged_seeds < 0.1 * big.target_stories
    assert big.join_accuracy >= 0.8 and big.new_accuracy >= 0.8


def test_memory_grows_with_live_stories(small_bench: BenchResult) -> None:
    small, big = small_bench.sizes
    assert big.memory_bytes > small.memory_bytes > 0
    assert small_bench.slope_bytes_per_story > 0


def test_assign_build_opens_exactly_one_story_per_seed() -> None:
    r = run_size(300, probe=10, seed=5, build="assign", config=LinkerConfig(max_candidates=5))
    assert r.live_stories == 300 and r.merged_seeds == 0
    assert r.candidates_max <= 5


def test_progress_reaches_the_end_of_every_stage() -> None:
    seen: dict[str, tuple[int, int]] = {}
    run_size(120, probe=6, seed=2, build="link", progress=lambda stage, done, total: seen.__setitem__(stage, (done, total)))
    assert len(seen) == 2 and all(done == total for done, total in seen.values())


def test_isolated_run_matches_in_process_run() -> None:
    # Deterministic corpus and linker: a fresh interpreter takes the same decisions.
    a = run_benchmark([150], probe=10, seed=9, isolate=True).sizes[0]
    b = run_size(150, probe=10, seed=9)
    assert (a.live_stories, a.merged_seeds, a.candidates_mean, a.join_accuracy) == (
        b.live_stories, b.merged_seeds, b.candidates_mean, b.join_accuracy,
    )  # fmt: skip


@given(
    slope=st.floats(1, 1e5),
    intercept=st.floats(-1e6, 1e6),
    xs=st.lists(st.integers(1, 10**6), min_size=2, max_size=6, unique=True),
)
@settings(max_examples=50, deadline=None)
def test_fit_line_recovers_an_exact_line(slope: float, intercept: float, xs: list[int]) -> None:
    s, i, r2 = fit_line(xs, [slope * x + intercept for x in xs])
    assert s == pytest.approx(slope, rel=1e-6)
    assert i == pytest.approx(intercept, rel=1e-4, abs=1e-3 * slope * max(xs))
    assert r2 == pytest.approx(1.0, abs=1e-6)


def test_deep_size_counts_shared_objects_once() -> None:
    inner = ["x" * 1000]
    assert deep_size([inner, inner]) < deep_size([inner, ["y" * 1000]])
    assert deep_size({"k": inner}) > 1000


def test_outputs_json_table_and_plot(small_bench: BenchResult, tmp_path) -> None:
    p = write_json(small_bench, tmp_path / "b" / "link-cost.json")
    data = json.loads(p.read_text())
    assert [s["target_stories"] for s in data["sizes"]] == [200, 2000]
    assert data["judged_ratio"] == max(data["p50_ratio"], data["cpu_ratio"])
    assert data["time_ok"] == (data["judged_ratio"] <= data["max_time_ratio"])
    assert data["slope_bytes_per_story"] == small_bench.slope_bytes_per_story
    table = results_table(small_bench)
    assert table.row_count == 2
    pytest.importorskip("matplotlib")
    png = write_plot(small_bench, tmp_path / "b" / "link-cost.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bench_links_writes_its_files(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    res = CliRunner().invoke(app, ["bench-links", "--sizes", "100,300", "--probe", "6", "--retire", "80", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "link-cost.json").is_file() and (tmp_path / "link-cost.png").is_file()
    assert "bytes/story" in res.output
    retired = json.loads((tmp_path / "link-retire.json").read_text())
    assert retired["articles"] == 240 and retired["retired"] > 0 and "largest table value" in res.output


def test_cli_bench_links_rejects_bad_sizes(tmp_path) -> None:
    res = CliRunner().invoke(app, ["bench-links", "--sizes", "ten", "--out", str(tmp_path)])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["bench-links", "--retire-size", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--retire-size" in res.output


def test_retirement_keeps_every_table_value_small_and_folds() -> None:
    """Stories retire all along the stream: their records fold (small fold_every), every value
    stays far below a Kafka message, and what retired stories leave is a small share of the
    writes. Before the retired aggregate was split into parts, its one key grew with every
    retirement (past 1 MB after about 1,600 retired stories)."""
    cfg = LinkerConfig(retired_fold_every=16)
    r = run_retirement(300, config=cfg)
    assert r.articles == 900 and r.retired > 200 and r.folds == r.retired // 16  # the last day's stories are live
    assert r.largest_value_bytes < 600_000 and r.journals_in_parts == 0
    assert 0 < r.retired_bytes_per_article < r.bytes_per_article


def test_big_stories_make_journals_in_parts_each_within_the_limit() -> None:
    """Stories of 40 articles: a batch of 32 touches some 30 of them, whose journal is over a
    (small) message limit; it goes in parts, and no value written is over the limit."""
    r = run_retirement(40, per_story=40, message_limit=300_000)
    assert r.journals_in_parts > r.batches // 2
    assert r.largest_value_bytes <= 300_000 - 16_384
