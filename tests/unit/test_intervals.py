from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.intervals import compatible, conflict, fmt, mirror, relation, sort_key, upper
from pipeline.types import Interval


def iv(lo: float, hi: float | None, *, fuzzy: bool = False, hedge: str | None = None) -> Interval:
    return Interval(lo=lo, hi=hi, fuzzy=fuzzy, hedge=hedge)


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (iv(14, 14), iv(14, 14), "equal"),
        (iv(13, None), iv(14, 14), "contains"),  # "more than a dozen" vs "14"
        (iv(14, 14), iv(13, None), "within"),
        (iv(23, 23), iv(23, None), "within"),  # 23 vs ">= 23"
        (iv(14, 14), iv(19, 19), "disjoint"),
        (iv(19, 19), iv(23, None), "disjoint"),
        (iv(28.8, 36), iv(4, None), "within"),  # "nearly three dozen" vs "at least four"
        (iv(2, 6), iv(3, 9), "overlap"),  # "a few" vs "several"
        (iv(0, 0), iv(1, None), "disjoint"),  # "no Iranians" vs "one of them was Iranian"
        (iv(10, 20), iv(20, 30), "overlap"),  # closed intervals touch at 20
        (iv(5, None), iv(7, None), "contains"),
    ],
)
def test_relation_examples(a: Interval, b: Interval, expected: str) -> None:
    assert relation(a, b) == expected
    assert relation(b, a) == mirror(expected)  # type: ignore[arg-type]


def test_conflict_hard_and_soft() -> None:
    assert conflict(iv(14, 14), iv(19, 19)) == "hard"
    assert conflict(iv(14, 14), iv(23, None, hedge="at least")) == "hard"  # bounded, not fuzzy
    assert conflict(iv(28.8, 36, fuzzy=True, hedge="nearly"), iv(40, 40)) == "soft"
    assert conflict(iv(13, None), iv(14, 14)) == "none"
    assert conflict(iv(6, 6), iv(28.8, 36, fuzzy=True)) == "soft"


def test_different_period_lookalike_intervals_overlap_anyway() -> None:
    nearly_three_dozen = iv(28.8, 36, fuzzy=True, hedge="nearly")
    at_least_four = iv(4, None, hedge="at least")
    six = iv(6, 6)
    assert compatible(nearly_three_dozen, at_least_four)
    assert compatible(six, at_least_four)


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (iv(14, 14), "14"),
        (iv(13, None), ">= 13"),
        (iv(0, 9), "<= 9"),
        (iv(24, 143, fuzzy=True), "~24-143"),
        (iv(28.8, 36, fuzzy=True), "~28.8-36"),
        (iv(5200, 5200), "5200"),
        (iv(25000, 25000), "25,000"),
        (iv(0, 0), "0"),
        (iv(3, 9), "3-9"),
    ],
)
def test_fmt(interval: Interval, text: str) -> None:
    assert fmt(interval) == text


def test_upper_and_sort_key() -> None:
    assert upper(iv(1, None)) == math.inf
    ordered = sorted([iv(23, None), iv(14, 14), iv(23, 23), iv(19, 19)], key=sort_key)
    assert [fmt(x) for x in ordered] == ["14", "19", "23", ">= 23"]


# --------------------------------------------------------------------------- properties

_bounds = st.integers(min_value=0, max_value=60).map(float) | st.floats(
    min_value=0, max_value=60, allow_nan=False, allow_infinity=False
)


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    lo = draw(_bounds)
    open_top = draw(st.booleans())
    hi = None if open_top else lo + draw(st.integers(min_value=0, max_value=20) | st.floats(0, 20))
    return Interval(lo=lo, hi=hi, fuzzy=draw(st.booleans()))


def _intersects(a: Interval, b: Interval) -> bool:
    return max(a.lo, b.lo) <= min(upper(a), upper(b))


@given(intervals(), intervals())
def test_conflict_and_compatible_are_symmetric(a: Interval, b: Interval) -> None:
    assert conflict(a, b) == conflict(b, a)
    assert compatible(a, b) == compatible(b, a)


@given(intervals(), intervals())
def test_compatible_iff_intersect(a: Interval, b: Interval) -> None:
    assert compatible(a, b) == _intersects(a, b)
    assert (conflict(a, b) == "none") == _intersects(a, b)


@given(intervals(), intervals())
def test_containment_implies_compatible(a: Interval, b: Interval) -> None:
    if relation(a, b) in ("equal", "contains", "within"):
        assert compatible(a, b)


@given(intervals(), intervals())
def test_relation_mirrors(a: Interval, b: Interval) -> None:
    assert relation(b, a) == mirror(relation(a, b))


@given(intervals())
def test_relation_reflexive(a: Interval) -> None:
    assert relation(a, a) == "equal"
    assert conflict(a, a) == "none"


@given(intervals(), intervals())
def test_soft_iff_fuzzy_decides(a: Interval, b: Interval) -> None:
    c = conflict(a, b)
    if c != "none":
        assert (c == "soft") == (a.fuzzy or b.fuzzy)
