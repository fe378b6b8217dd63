"""pipeline.numbers: number phrases as written -> intervals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.numbers import add, parse_quantity
from pipeline.types import Interval

INF = None


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("14", 14, 14),
        ("1,200", 1200, 1200),
        ("5,200", 5200, 5200),
        ("three", 3, 3),
        ("twenty-three", 23, 23),
        ("two hundred and fifty", 250, 250),
        ("a dozen", 12, 12),
        ("three dozen", 36, 36),
        ("half a dozen", 6, 6),
        ("a score", 20, 20),
        ("1.5 million", 1_500_000, 1_500_000),
        ("more than 20", 21, INF),
        ("More than a dozen", 13, INF),
        ("over 300", 301, INF),
        ("at least 20", 20, INF),
        ("at least four", 4, INF),
        ("20 or more", 20, INF),
        ("fewer than 10", 0, 9),
        ("at most 5", 0, 5),
        ("up to 40", 0, 40),
        ("between 10 and 12", 10, 12),
        ("10 to 12", 10, 12),
        ("10-12", 10, 12),
        ("dozens", 24, 143),
        ("dozens of", 24, 143),
        ("hundreds", 200, 999),
        ("thousands", 2000, 9999),
        ("several", 3, 9),
        ("a few", 2, 6),
        ("several thousand", 3000, 9000),
        ("no", 0, 0),
    ],
)
def test_table(text: str, lo: float, hi: float | None) -> None:
    iv = parse_quantity(text)
    assert iv is not None, text
    assert (iv.lo, iv.hi) == (lo, hi)


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [("nearly three dozen", 28, 36), ("almost 100", 80, 100), ("about 50", 40, 60), ("some 40", 32, 48)],
)
def test_fuzzy_hedges(text: str, lo: float, hi: float) -> None:
    iv = parse_quantity(text)
    assert iv is not None and (iv.lo, iv.hi) == (lo, hi)
    assert iv.fuzzy


def test_band_is_configurable() -> None:
    iv = parse_quantity("about 100", band=0.1)
    assert iv is not None and (iv.lo, iv.hi) == (90, 110)


def test_hedge_names() -> None:
    assert parse_quantity("over 5").hedge == "more than"  # type: ignore[union-attr]
    assert parse_quantity("dozens").hedge == "dozens"  # type: ignore[union-attr]
    exact = parse_quantity("14")
    assert exact is not None and exact.hedge is None and not exact.fuzzy and exact.exact


@pytest.mark.parametrize(
    "text",
    ["19th", "1st", "first", "second", "2019", "in 2019", "$5", "5%", "20 percent", "January 22", "June 26",
     "23 years", "3 pm", "three four", "foo", "", "a", "   ", "more than"],
)
def test_not_counts(text: str) -> None:
    assert parse_quantity(text) is None


def test_add_subgroups() -> None:
    total = add(Interval(lo=3, hi=3), parse_quantity("at least 20"))  # type: ignore[arg-type]
    assert (total.lo, total.hi) == (23, None)
    assert add(Interval(lo=3, hi=3), Interval(lo=20, hi=20)).exact


@given(st.integers(min_value=0, max_value=10**9))
def test_digits_parse_exactly(n: int) -> None:
    if 1800 <= n <= 2100:
        return  # bare years are not counts
    iv = parse_quantity(str(n))
    assert iv is not None and iv.lo == iv.hi == n
    with_commas = parse_quantity(f"{n:,}")
    assert with_commas is not None and with_commas.lo == n


@given(st.integers(min_value=0, max_value=10**6))
def test_hedge_invariants(n: int) -> None:
    more = parse_quantity(f"more than {n:,}")
    assert more is not None and more.lo == n + 1 and more.hi is None
    least = parse_quantity(f"at least {n:,}")
    assert least is not None and least.lo == n and least.hi is None
    about = parse_quantity(f"about {n:,}")
    assert about is not None and about.hi is not None and about.lo <= n <= about.hi and about.fuzzy


@given(st.text(max_size=60))
def test_never_raises(text: str) -> None:
    iv = parse_quantity(text)
    assert iv is None or (iv.lo >= 0 and (iv.hi is None or iv.hi >= iv.lo) and not math.isnan(iv.lo))


@given(
    st.builds(Interval, lo=st.integers(0, 1000), hi=st.one_of(st.none(), st.integers(1000, 2000))),
    st.builds(Interval, lo=st.integers(0, 1000), hi=st.one_of(st.none(), st.integers(1000, 2000))),
)
def test_add_bounds(a: Interval, b: Interval) -> None:
    s = add(a, b)
    assert s.lo == a.lo + b.lo
    assert (s.hi is None) == (a.hi is None or b.hi is None)


@pytest.mark.parametrize(("text", "lo", "hi"), [
    ("20, 000", 20_000, 20_000),
    ("more than 31, 000", 31_001, None),
    ("1, 200, 000", 1_200_000, 1_200_000),
])
def test_spaced_thousands_separator(text: str, lo: float, hi: float | None) -> None:
    """Tokenised corpora write '20, 000': still one number."""
    got = parse_quantity(text)
    assert got is not None and (got.lo, got.hi) == (lo, hi)


def test_spaced_comma_between_small_numbers_is_not_a_number() -> None:
    assert parse_quantity("5, 6") is None
    assert parse_quantity("12, 30") is None
