"""Relations between numeric claims read as closed intervals.

A count in a news report is an :class:`~pipeline.types.Interval` ``[lo, hi]`` (``hi=None`` is
+infinity): "14" is ``[14, 14]``, "at least 20" is ``[20, inf)``, "nearly three dozen" is
``[28.8, 36]`` with ``fuzzy=True``. Two reports of one quantity

* agree when the intervals intersect (``compatible``): equality, containment (one report is a
  refinement of the other: "more than a dozen" vs "14") and partial overlap all agree;
* conflict when they are disjoint. The conflict is ``"hard"`` when neither interval comes from a
  fuzzy hedge (both exact, or bounded by "at least"/"more than"/"up to"...), and ``"soft"`` when a
  fuzzy hedge ("about", "nearly", "dozens") set one of the bounds: the gap then depends on an
  editorial tolerance, not on what was written.

Everything here is pure and symmetric where the name says so; the property tests pin it.
"""

from __future__ import annotations

import math
from typing import Literal

from pipeline.types import Interval

Relation = Literal["equal", "contains", "within", "overlap", "disjoint"]
Conflict = Literal["none", "soft", "hard"]

_MIRROR: dict[Relation, Relation] = {
    "equal": "equal",
    "contains": "within",
    "within": "contains",
    "overlap": "overlap",
    "disjoint": "disjoint",
}


def upper(iv: Interval) -> float:
    """The upper bound with ``None`` read as +infinity."""
    return math.inf if iv.hi is None else iv.hi


def relation(a: Interval, b: Interval) -> Relation:
    """How ``a`` stands to ``b`` as closed sets.

    ``"equal"`` same bounds; ``"contains"`` ``a`` is a strict superset of ``b``; ``"within"``
    ``a`` is a strict subset of ``b``; ``"overlap"`` they intersect and neither contains the
    other; ``"disjoint"`` they share no point. ``relation(b, a)`` is always the mirror image.
    Hedge text and the fuzzy flag do not matter here, only the bounds.
    """
    a_hi, b_hi = upper(a), upper(b)
    if a.lo == b.lo and a_hi == b_hi:
        return "equal"
    if a.lo > b_hi or b.lo > a_hi:
        return "disjoint"
    if a.lo <= b.lo and a_hi >= b_hi:
        return "contains"
    if b.lo <= a.lo and b_hi >= a_hi:
        return "within"
    return "overlap"


def mirror(rel: Relation) -> Relation:
    """The relation seen from the other side: ``relation(b, a) == mirror(relation(a, b))``."""
    return _MIRROR[rel]


def compatible(a: Interval, b: Interval) -> bool:
    """True when both reports can be right at once, i.e. the intervals intersect."""
    return relation(a, b) != "disjoint"


def conflict(a: Interval, b: Interval) -> Conflict:
    """``"none"`` for intersecting intervals; for disjoint ones ``"soft"`` when either side's
    bounds come from a fuzzy hedge (``Interval.fuzzy``) and ``"hard"`` otherwise. Symmetric."""
    if compatible(a, b):
        return "none"
    return "soft" if (a.fuzzy or b.fuzzy) else "hard"


def sort_key(iv: Interval) -> tuple[float, float]:
    """Deterministic order of intervals: by lower bound, then upper bound (open last)."""
    return (iv.lo, upper(iv))


def _num(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))
    return f"{x:.1f}".rstrip("0").rstrip(".")


def fmt(iv: Interval) -> str:
    """A short human display of an interval, used as ``Side.value``.

    ``[14, 14]`` -> ``"14"``; ``[13, inf)`` -> ``">= 13"``; ``[0, 9]`` -> ``"<= 9"``;
    ``[24, 143]`` -> ``"24-143"``. A fuzzy interval is prefixed with ``"~"`` (``"~28.8-36"``), so
    a reader sees that the bounds are an editorial reading of "about"/"nearly"/"dozens".
    Integral bounds print without decimals, others with one; 10,000 and above get thousands
    separators.
    """
    tilde = "~" if iv.fuzzy else ""
    if iv.hi is None:
        return f"{tilde}>= {_num(iv.lo)}"
    if iv.lo == iv.hi:
        return f"{tilde}{_num(iv.lo)}"
    if iv.lo <= 0:
        return f"{tilde}<= {_num(iv.hi)}"
    return f"{tilde}{_num(iv.lo)}-{_num(iv.hi)}"


__all__ = ["Conflict", "Relation", "compatible", "conflict", "fmt", "mirror", "relation", "sort_key", "upper"]
