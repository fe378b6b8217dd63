from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.link import LinkerConfig
from pipeline.linkeval import bcubed, evaluate_file, order_scores, pairwise, shuffled_orders, worst
from tests.conftest import SHARED_DATA

GOLD = {"a": "g1", "b": "g1", "c": "g2"}


def test_perfect_prediction_scores_one() -> None:
    pred = {"a": "x", "b": "x", "c": "y"}
    assert bcubed(pred, GOLD) == (1.0, 1.0, 1.0)
    assert pairwise(pred, GOLD) == (1.0, 1.0, 1.0)


def test_everything_in_one_cluster() -> None:
    pred = {"a": "x", "b": "x", "c": "x"}
    p, r, f = bcubed(pred, GOLD)
    # a and b each see 2 of 3 right companions, c sees only itself.
    assert p == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert r == 1.0
    assert f == pytest.approx(2 * p / (p + 1))
    pp, pr, _ = pairwise(pred, GOLD)
    assert (pp, pr) == (pytest.approx(1 / 3), 1.0)


def test_all_singletons() -> None:
    pred = {"a": "1", "b": "2", "c": "3"}
    p, r, _ = bcubed(pred, GOLD)
    assert p == 1.0
    assert r == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    pp, pr, pf = pairwise(pred, GOLD)
    assert (pp, pr, pf) == (1.0, 0.0, 0.0)


def test_articles_missing_from_prediction_are_ignored() -> None:
    assert bcubed({"a": "x", "b": "x"}, GOLD) == (1.0, 1.0, 1.0)


def test_worst_reports_merges_and_splits_with_titles() -> None:
    gold = {"a": "g1", "b": "g1", "c": "g2", "d": "g2", "e": "g3", "f": "g3"}
    pred = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "z", "f": "z"}
    titles = {k: f"title {k}" for k in gold}
    merges, splits = worst(pred, gold, titles, n=5)
    assert [m.cluster for m in merges] == ["x"]
    assert merges[0].parts == {"g1": ("a", "b"), "g2": ("c",)}
    assert merges[0].titles["c"] == "title c"
    assert [s.cluster for s in splits] == ["g2"]
    assert set(splits[0].parts) == {"x", "y"}
    assert "title" in merges[0].describe()


labels = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 4), min_size=1, max_size=30)


@given(labels)
def test_relabelled_gold_is_perfect(gold_ints: dict[str, int]) -> None:
    gold = {k: f"g{v}" for k, v in gold_ints.items()}
    pred = {k: f"p{v * 7 + 3}" for k, v in gold_ints.items()}  # a bijection of cluster names
    assert bcubed(pred, gold) == pytest.approx((1.0, 1.0, 1.0))
    assert pairwise(pred, gold) == pytest.approx((1.0, 1.0, 1.0))


@given(labels, st.lists(st.integers(0, 4), min_size=30, max_size=30))
def test_metrics_are_in_unit_interval(gold_ints: dict[str, int], draws: list[int]) -> None:
    gold = {k: str(v) for k, v in gold_ints.items()}
    pred = {k: str(d) for k, d in zip(gold, draws, strict=False)}
    for metric in (bcubed, pairwise):
        p, r, f = metric(pred, gold)
        for v in (p, r, f):
            assert 0.0 <= v <= 1.0 and not math.isnan(v)
        assert f <= max(p, r) + 1e-12


ECB = SHARED_DATA / "ecbplus-dev.jsonl"


@pytest.mark.slow
def test_ecbplus_quality_floor(nlp) -> None:
    """Quality gate on ECB+ topics 1-20 with the shipped weights: a change may raise the floor,
    not silently lower it. Measured 0.915 BCubed F1 on this path (see
    pipeline/link.py). The floor was 0.898 before URL titles stopped counting as title words
    ("http", "www", ... were shared by every ECB+-subtopic article: a corpus artefact worth about
    0.01 here); the order-averaged and cross-validated numbers did not drop."""
    if not ECB.exists():
        pytest.skip(f"{ECB} not present")
    result = evaluate_file(ECB, nlp, LinkerConfig())
    assert result["articles"] == 413
    assert result["bcubed"]["f1"] >= 0.905, result
    assert result["pairwise"]["f1"] >= 0.86, result


def test_shuffled_orders_move_only_undated_positions() -> None:
    dated = [True, False, False, True, False, False, False, True]
    orders = shuffled_orders(dated, 20, seed=3)
    assert len(orders) == 20 and len({tuple(o) for o in orders}) > 1
    undated = {i for i, d in enumerate(dated) if not d}
    for order in orders:
        assert sorted(order) == list(range(len(dated)))
        assert all(order[i] == i for i, d in enumerate(dated) if d)
        assert {order[i] for i in undated} == undated
    assert shuffled_orders(dated, 20, seed=3) == orders  # seeded: the same spread every run


def test_order_scores_link_each_order_afresh() -> None:
    """Two topics of three articles each, whatever the order, are linked into two stories."""
    from pipeline.link import StoryLinker
    from tests.unit.test_link import stream

    items_ = stream(seed=1, n=12, topics=2, days=2)
    items = [(aid, f, None) for aid, _, f, _ in items_]
    gold = {aid: topic for aid, topic, _, _ in items_}
    scores = order_scores(items, gold, lambda: StoryLinker(LinkerConfig()), shuffled_orders([False] * len(items), 5))
    assert len(scores) == 5 and all(f == 1.0 for _, _, f in scores)
    split = order_scores(items, gold, lambda: StoryLinker(LinkerConfig(threshold=0.999999)), [list(range(len(items)))])
    assert split[0][2] < 1.0  # a story per article: the score can fail


def test_synthetic_dates_same_day_and_spread_by_story() -> None:
    from pipeline.linkeval import synthetic_dates

    stories = ["a", "b", "a", "c", "b", "a", "c", "c"]
    order, dates = synthetic_dates(stories, "same", seed=1)
    assert sorted(order) == list(range(len(stories))) and len(set(dates)) == 1
    assert synthetic_dates(stories, "same", seed=1) == (order, dates)  # seeded
    order, dates = synthetic_dates(stories, "spread", seed=1, window_days=30, spread_days=2)
    assert sorted(order) == list(range(len(stories)))
    assert [dates[i] for i in order] == sorted(dates)  # the stream is in date order
    for s in set(stories):  # a story's articles fall within spread_days of each other
        mine = [d for d, t in zip(dates, stories) if t == s]
        assert (max(mine) - min(mine)).total_seconds() <= 2 * 86400
    assert len({min(d for d, t in zip(dates, stories) if t == s) for s in set(stories)}) == 3
    with pytest.raises(ValueError, match="unknown dates"):
        synthetic_dates(stories, "weekly", seed=1)


def test_merge_origins_name_the_join_where_each_merge_began() -> None:
    from pipeline.linkeval import merge_origins
    from pipeline.types import LinkDecision

    def d(story: str, new: bool = False, p: float = 0.9, dup: str | None = None) -> LinkDecision:
        return LinkDecision(story=story, is_new=new, score=p, duplicate_of=dup)

    gold = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C", "x": "A"}
    stream = [
        ("a1", d("s1", new=True)),
        ("a2", d("s1")),
        ("b1", d("s1", p=0.61)),  # the first of B joins A's story: a merge begins here
        ("b2", d("s1")),  # follows it: not an origin
        ("c1", d("s2", new=True)),
        ("c2", d("s3", new=True)),  # C split in two ...
        ("n", d("s3")),  # (no gold story: skipped, but a member)
        ("x", d("s3", p=0.7, dup="c2")),  # ... and an A article joins C's second part as a copy
    ]
    origins = merge_origins(stream, gold, {"b1": "Second quake"})
    assert [(o.article, o.joined, o.size, o.first, o.duplicate) for o in origins] == [
        ("b1", "A", 2, True, False),
        ("x", "C", 2, False, True),
    ]
    assert origins[0].score == 0.61 and "p=0.61 'Second quake' (B, first of its story)" in origins[0].describe()
    assert merge_origins([(a, d(g, new=a.endswith("1"))) for a, g in gold.items() if a != "x"], gold) == []
