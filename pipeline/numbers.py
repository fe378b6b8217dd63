"""Number phrases as written in news text -> closed intervals.

A small grammar of our own, because the general-purpose parsers get the phrases that matter in
news wrong ("a dozen" = 1, "three dozen" = 3, hedges dropped; see RESEARCH.md section 2).

``parse_quantity`` reads one number phrase ("at least 20", "more than a dozen", "nearly three
dozen", "hundreds", "between 10 and 12", "1,200") and returns an :class:`~pipeline.types.Interval`
or ``None`` when the phrase is not a count (ordinals, years, dates, money, percentages, or
anything the grammar does not fully consume). It never raises on any ``str``.

Intervals (``band`` defaults to 0.2, the editorial tolerance of fuzzy hedges):

=============================== =========================
N                               [N, N]
more than / over N              [N+1, inf)
at least / no fewer than N      [N, inf)
fewer than / less than N        [0, N-1]
at most / up to N               [0, N]
nearly / almost N               [N(1-band), N]      fuzzy
about / around / some N         [N(1-band), N(1+band)] fuzzy
between A and B / A to B / A-B  [A, B]
a dozen / three dozen / a score 12 / 36 / 20
dozens / hundreds / thousands   [24, 143] / [200, 999] / [2000, 9999]  fuzzy
several / a few                 [3, 9] / [2, 6]     fuzzy (they multiply: "several thousand")
no / none / zero                [0, 0]
=============================== =========================

Fuzzy bounds are widened to whole numbers (floor of lo, ceil of hi): counts are integers.
"""

from __future__ import annotations

import math
import re

from pipeline.types import Interval

__all__ = ["add", "parse_quantity"]

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
    if w != "_"
}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_MULTIPLIERS = {"hundred": 100, "dozen": 12, "score": 20}

# Vague quantities: (lo, hi) before any following scale word multiplies them.
_VAGUE_PLURALS = {
    "dozens": (24, 143),
    "scores": (40, 199),
    "tens": (20, 99),
    "hundreds": (200, 999),
    "thousands": (2_000, 9_999),
    "millions": (2_000_000, 9_999_999),
}
_VAGUE_WORDS = {
    ("several",): (3, 9),
    ("a", "few"): (2, 6),
    ("a", "handful"): (2, 6),
    ("a", "couple"): (2, 3),
    ("a", "couple", "of"): (2, 3),
}
# Scale words that may follow a vague quantity or a number: "several thousand", "hundreds of thousands".
_SCALE_AFTER = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
                "dozen": 12, "hundreds": 100, "thousands": 1_000, "millions": 1_000_000}

# Hedge prefixes, longest first; value: (canonical hedge, kind).
_PREFIXES: tuple[tuple[tuple[str, ...], str, str], ...] = tuple(
    sorted(
        [
            (tuple(p.split()), canon, kind)
            for p, canon, kind in [
                ("more than", "more than", "gt"),
                ("over", "more than", "gt"),
                ("upwards of", "more than", "gt"),
                ("in excess of", "more than", "gt"),
                ("just over", "more than", "gt"),
                ("at least", "at least", "ge"),
                ("no fewer than", "at least", "ge"),
                ("no less than", "at least", "ge"),
                ("fewer than", "fewer than", "lt"),
                ("less than", "fewer than", "lt"),
                ("under", "fewer than", "lt"),
                ("at most", "at most", "le"),
                ("up to", "at most", "le"),
                ("as many as", "at most", "le"),
                ("no more than", "at most", "le"),
                ("nearly", "nearly", "near"),
                ("almost", "nearly", "near"),
                ("close to", "nearly", "near"),
                ("about", "about", "about"),
                ("around", "about", "about"),
                ("some", "about", "about"),
                ("roughly", "about", "about"),
                ("approximately", "about", "about"),
                ("an estimated", "about", "about"),
                ("estimated", "about", "about"),
                ("a total of", "", "exact"),
                ("exactly", "", "exact"),
                ("all", "", "exact"),
                ("the", "", "exact"),
            ]
        ],
        key=lambda t: -len(t[0]),
    )
)
_SUFFIXES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("or", "more"), "at least", "ge"),
    (("or", "so"), "about", "about"),
    (("plus",), "at least", "ge"),
    (("+",), "at least", "ge"),
)

_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[a-z]+|[-+]")
_ALLOWED = re.compile(r"^[a-z0-9,.\s\-+\u2013\u2014']*$")
_DIGITS = re.compile(r"^\d{1,3}(?:,\d{3})+$|^\d+$|^\d+\.\d+$")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)\b|\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|[a-z]+tieth|hundredth|thousandth)\b")
_DATE_WORDS = re.compile(
    r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|year|years|month|months|week|weeks|day|days|hour|hours|minute|minutes|"
    r"am|pm|o'clock|percent|per|cent|dollars?|euros?|pounds?|usd|bn|m)\b"
)


def _int_like(x: float) -> bool:
    return math.isfinite(x) and x == int(x)


def _core(tokens: list[str]) -> tuple[float, float, str | None] | None:
    """A number without hedges -> (lo, hi, vague word or None). None when not fully consumed."""
    if not tokens:
        return None
    if tokens in (["no"], ["none"], ["zero"], ["nil"]):
        return 0.0, 0.0, None
    # vague leading quantity, then only scale words may follow
    vague: tuple[float, float, str] | None = None
    rest: list[str] = []
    if tokens[0] in _VAGUE_PLURALS:
        lo, hi = _VAGUE_PLURALS[tokens[0]]
        vague, rest = (lo, hi, tokens[0]), tokens[1:]
    else:
        for words, (lo, hi) in sorted(_VAGUE_WORDS.items(), key=lambda kv: -len(kv[0])):
            if tuple(tokens[: len(words)]) == words:
                vague, rest = (lo, hi, " ".join(w for w in words if w != "of")), tokens[len(words) :]
                break
    if vague is not None:
        lo_v, hi_v, word = vague
        for t in rest:
            if t == "of":
                continue
            if t not in _SCALE_AFTER:
                return None
            lo_v, hi_v = lo_v * _SCALE_AFTER[t], hi_v * _SCALE_AFTER[t]
        return float(lo_v), float(hi_v), word
    if tokens[:3] == ["half", "a", "dozen"] and len(tokens) == 3:
        return 6.0, 6.0, None
    return _exact(tokens)


def _exact(tokens: list[str]) -> tuple[float, float, None] | None:
    total = 0.0
    current: float | None = None
    seen_number = False
    prev_digits = False
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t == "and" and seen_number and nxt is not None:
            i += 1
            continue
        if t in ("a", "an") and nxt in (*_MULTIPLIERS, *_SCALES) and current is None:
            current = 1.0
        elif _DIGITS.match(t):
            if prev_digits:
                return None
            v = float(t.replace(",", ""))
            if "." in t and nxt not in (*_SCALES, "hundred"):
                return None
            current = (current or 0.0) + v
            prev_digits = True
            seen_number = True
            i += 1
            continue
        elif t in _UNITS:
            if current is not None and current % 100 not in (0,) and (current % 100 < 20 or current % 10):
                return None  # "three four" is not a number; "twenty three" / "hundred and four" are
            current = (current or 0.0) + _UNITS[t]
            seen_number = True
        elif t in _TENS:
            if current is not None and current % 100:
                return None
            current = (current or 0.0) + _TENS[t]
            seen_number = True
            if nxt == "-":
                i += 1  # "twenty-three"
        elif t in _MULTIPLIERS:
            current = (current if current is not None else 1.0) * _MULTIPLIERS[t]
            seen_number = True
        elif t in _SCALES:
            total += (current if current is not None else 1.0) * _SCALES[t]
            current = None
            seen_number = True
        else:
            return None
        prev_digits = False
        i += 1
    if not seen_number:
        return None
    value = total + (current or 0.0)
    if not _int_like(value):
        return None
    return value, value, None


def _range(tokens: list[str]) -> tuple[float, float] | None:
    """'between A and B', 'from A to B', 'A to B', 'A-B', 'A or B' -> (A, B) with A <= B."""
    body = tokens
    seps: tuple[str, ...] = ("to", "-", "or", "and")
    if body and body[0] == "between":
        body, seps = body[1:], ("and", "-")
    elif body and body[0] == "from":
        body, seps = body[1:], ("to", "-")
    for k in range(1, len(body) - 1):
        if body[k] not in seps:
            continue
        a, b = _core(body[:k]), _core(body[k + 1 :])
        if a is None or b is None or a[2] is not None or b[2] is not None:
            continue
        if a[0] <= b[0] and not (body[k] == "and" and tokens[0] != "between"):
            return a[0], b[1]
    return None


def _split_affixes(tokens: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    hedges: list[tuple[str, str]] = []
    changed = True
    while changed and tokens:
        changed = False
        for words, canon, kind in _PREFIXES:
            n = len(words)
            if len(tokens) > n and tuple(tokens[:n]) == words:
                tokens = tokens[n:]
                if kind != "exact":
                    hedges.append((canon, kind))
                changed = True
                break
    for words, canon, kind in _SUFFIXES:
        n = len(words)
        if len(tokens) > n and tuple(tokens[-n:]) == words:
            tokens = tokens[:-n]
            hedges.append((canon, kind))
            break
    while tokens and tokens[-1] == "of":
        tokens = tokens[:-1]
    return tokens, hedges


def _floor(x: float) -> float:
    return float(math.floor(round(x, 9)))  # round first: 100 * 1.1 is 110.00000000000001


def _ceil(x: float) -> float:
    return float(math.ceil(round(x, 9)))


_SPACED_THOUSANDS = re.compile(r"(?<=\d), (?=\d{3}(?!\d))")


def parse_quantity(text: str, *, band: float = 0.2) -> Interval | None:
    """Parse one number phrase as written into an Interval, or None when it is not a count.

    Never raises for any ``str``. ``band`` is the relative width of "about"/"nearly" hedges.
    """
    if not isinstance(text, str) or len(text) > 120:
        return None
    s = text.strip().lower().replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'")
    # "20, 000": a thousands separator followed by a space (tokenised corpora) is still one number
    s = _SPACED_THOUSANDS.sub(",", s)
    if not s or not _ALLOWED.match(s) or _ORDINAL.search(s) or _DATE_WORDS.search(s):
        return None
    tokens = _TOKEN.findall(s)
    if not tokens:
        return None
    tokens, hedges = _split_affixes(tokens)
    if not tokens or len(hedges) > 1:
        return None
    # a bare year is not a count: "2019", "in 2003" (commas mark counts: "2,019")
    if len(tokens) == 1 and re.fullmatch(r"1[89]\d\d|20\d\d|2100", tokens[0]) and not hedges:
        return None
    vague: str | None = None
    rng = _range(tokens)
    if rng is not None:
        lo, hi = rng
    else:
        core = _core(tokens)
        if core is None:
            return None
        lo, hi, vague = core
    hedge, kind = hedges[0] if hedges else (None, None)
    fuzzy = vague is not None
    new_hi: float | None = hi
    if kind == "gt":
        lo, new_hi = lo + 1, None
    elif kind == "ge":
        new_hi = None
    elif kind == "lt":
        lo, new_hi = 0.0, max(lo - 1, 0.0)
    elif kind == "le":
        lo = 0.0
    elif kind == "near":
        lo, fuzzy = _floor(lo * (1 - band)), True
    elif kind == "about":
        lo, new_hi, fuzzy = _floor(lo * (1 - band)), _ceil(hi * (1 + band)), True
    return Interval(lo=float(lo), hi=None if new_hi is None else float(new_hi), hedge=hedge or vague, fuzzy=fuzzy)


def add(a: Interval, b: Interval) -> Interval:
    """Sum of two counts of disjoint subgroups: [3,3] + [20,inf) = [23,inf)."""
    hi = None if a.hi is None or b.hi is None else a.hi + b.hi
    return Interval(lo=a.lo + b.lo, hi=hi, hedge=b.hedge or a.hedge, fuzzy=a.fuzzy or b.fuzzy)
