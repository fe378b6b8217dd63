"""Score the contradictions of a replay against a gold file.

:func:`score` is a pure function: a :class:`GoldSet`, the reported contradictions (rows of
``contradictions.jsonl``) and the story assignments (rows of ``assignments.jsonl``) in, a
:class:`Score` out. :func:`load_gold` and :func:`load_replay` read the files.

Gold format (YAML)
------------------
One file is one gold set: articles about one or more stories, what must be reported and what must
not::

    name: seeds                      # a label for tables
    input: ../../seeds               # optional: articles to replay, relative to this file
    articles: [000_a98772b5dcbc8382, ...]   # the gold set's articles (scope, see below)
    # or, for a gold set of several stories, each gold story with its articles:
    # articles: {8-ecbplus: [ecb-8-1ecbplus, ...], 20-ecb: [...]}
    contradictions:                  # each must be reported
      - id: detained-count           # a label
        kind: numeric                # numeric | exclusive | denial: the row of the recall table
        accept: [numeric]            # optional: reported kinds that may express it (default [kind])
        quantity: {predicate: detained, theme: people, event: main}
        sides:
          - {value: "14", articles: [001_..., 002_...]}
          - {value: ">= 23", articles: [003_...], attributed_to: ["*official*"]}
      - id: iranian-commander        # one gold contradiction the system reports as several
        kind: denial
        accept: [numeric, denial]
        parts:                       # found only when EVERY part is found
          - quantity: {predicate: detained, theme: commanders}
            sides: [...]
          - quantity: {about: "nationality:people:iranian@*"}
            sides: [...]
    not_contradictions:              # look-alikes that must not be reported
      - id: attacks
        quantity: {predicate: attacks}
      - id: stale-figure             # narrower: only a side with this value under this quantity
        quantity: {predicate: killed, theme: people}
        values: ["9"]

Gold stories (optional, additive). When ``articles`` is a mapping, every contradiction and
look-alike may name its gold ``story``; it then matches only reported contradictions with an
article of that gold story on a side, whatever story id the replay gave them. So one file can hold
many stories, and the same file scores a replay grouped by the linker or by the gold stories
(:func:`gold_assignments` is the article -> gold story map to replay with, see
``pipeline.replay.replay(stories=...)``).

Quantity matchers. A reported ``about`` key is ``"<predicate>:<theme>@<event>"``; the theme may
hold a colon (``people:iranian``) and the event an ``@`` (``detained@may``), so the key is split at
its first ``:`` and then at its first ``@``. ``predicate``, ``theme`` and ``event`` are
case-insensitive shell globs (``fnmatch``), each ``*`` when left out; ``about`` is a glob on the
whole key and, when given, replaces the three fields.

Side values. A gold ``value`` (or a list of alternatives) is either an interval in the display
grammar of :func:`pipeline.intervals.fmt` -- ``"14"``, ``">= 23"``, ``"<= 9"``, ``"24-143"``, an
optional leading ``~`` -- compared by its bounds with the reported value read the same way; or
any other text (a custody holder, ``denied``, ``doubted``), compared as a case- and
space-insensitive glob. ``articles`` are the articles that must at least be on that side (extra
articles are allowed: a wire copy on a side is not an error). ``attributed_to`` globs are checked
and reported, but do not decide whether a side is found.

Scoring, at the level of (story, quantity)
------------------------------------------
* Scope: the stories (``assignments.jsonl``) holding any gold article. Reported contradictions of
  other stories are ignored.
* A reported contradiction matches a gold part when its kind is accepted and its ``about`` key
  matches the part's quantity. A gold part is checked against the sides of all reported
  contradictions matching it in ONE story (the story that satisfies most of its sides); matches in
  other stories are false positives (``duplicate``: the story was split).
* A gold side is matched when some reported side of the part has a matching value and at least the
  gold articles. A part is found when all its sides are; a gold contradiction when all its parts
  are. Misses are listed per side with what was wrong (no such value, or which articles lacked).
* Precision per reported kind = reported contradictions matching a gold part / reported; recall
  per gold kind = gold contradictions found / gold contradictions. So the two rows of one kind can
  count different things when a gold entry accepts several kinds (documented in the table).
* Side level: gold sides matched / gold sides, and reported sides of matched contradictions that
  match a gold side / those reported sides (extra sides are listed).
* A reported contradiction matching a ``not_contradictions`` entry is a violation, listed; when it
  matches no gold part it is also a false positive. A value-restricted look-alike is violated only
  by a side with one of its values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

KINDS = ("numeric", "exclusive", "denial")


class GoldError(ValueError):
    """A gold file that does not follow the format (message says where)."""


# --------------------------------------------------------------------------- matchers


def split_about(about: str) -> tuple[str, str, str]:
    """``"detained:people@main"`` -> ``("detained", "people", "main")``; theme may hold ``:``, event
    may hold ``@`` (``"detained:people@detained@may"`` -> event ``"detained@may"``)."""
    predicate, _, rest = about.partition(":")
    theme, _, event = rest.partition("@")
    return predicate, theme, event


def _glob(text: str, pattern: str) -> bool:
    return fnmatchcase(" ".join(text.casefold().split()), " ".join(pattern.casefold().split()))


@dataclass(frozen=True)
class QuantityMatcher:
    """Which reported ``about`` keys are one gold quantity (globs, see the module docstring)."""

    predicate: str = "*"
    theme: str = "*"
    event: str = "*"
    about: str | None = None

    def matches(self, about: str) -> bool:
        if self.about is not None:
            return _glob(about, self.about)
        p, t, e = split_about(about)
        return _glob(p, self.predicate) and _glob(t, self.theme) and _glob(e, self.event)

    def describe(self) -> str:
        return self.about or f"{self.predicate}:{self.theme}@{self.event}"


_NUM = r"\d[\d,]*(?:\.\d+)?"
_INTERVAL = re.compile(rf"^~?\s*(?:(?P<ge>>=)\s*(?P<lo>{_NUM})|(?P<le><=)\s*(?P<hi>{_NUM})|(?P<a>{_NUM})(?:\s*-\s*(?P<b>{_NUM}))?)$")


def parse_value(text: str) -> tuple[float, float] | None:
    """Bounds of a display value (``"14"``, ``">= 23"``, ``"<= 9"``, ``"24-143"``, ``"~28.8-36"``),
    upper bound ``inf`` when open; None when the text is not an interval (a slot value)."""
    m = _INTERVAL.match(text.strip())
    if m is None:
        return None

    def num(s: str) -> float:
        return float(s.replace(",", ""))

    if m["ge"]:
        return num(m["lo"]), math.inf
    if m["le"]:
        return 0.0, num(m["hi"])
    a = num(m["a"])
    return a, (num(m["b"]) if m["b"] else a)


def value_matches(reported: str, gold: str) -> bool:
    """A reported side value against one gold value: equal bounds for intervals, a glob otherwise."""
    r, g = parse_value(reported), parse_value(gold)
    if g is not None:
        return r is not None and math.isclose(r[0], g[0], abs_tol=1e-6) and (
            r[1] == g[1] or math.isclose(r[1], g[1], abs_tol=1e-6)
        )
    return r is None and _glob(reported, gold)


# --------------------------------------------------------------------------- gold


@dataclass(frozen=True)
class GoldSide:
    values: tuple[str, ...]  # alternatives; any one may match
    articles: tuple[str, ...]
    attributed_to: tuple[str, ...] = ()

    def describe(self) -> str:
        return " | ".join(self.values)

    def value_ok(self, reported: str) -> bool:
        return any(value_matches(reported, v) for v in self.values)


@dataclass(frozen=True)
class GoldPart:
    quantity: QuantityMatcher
    kinds: frozenset[str]
    sides: tuple[GoldSide, ...]


@dataclass(frozen=True)
class GoldContradiction:
    id: str
    kind: str
    parts: tuple[GoldPart, ...]
    note: str = ""
    story: str | None = None  # the gold story it belongs to (None: any)


@dataclass(frozen=True)
class LookAlike:
    """A ``not_contradictions`` entry."""

    id: str
    quantity: QuantityMatcher
    kinds: frozenset[str] = frozenset(KINDS)
    values: tuple[str, ...] = ()
    note: str = ""
    story: str | None = None  # the gold story it belongs to (None: any)

    def violated_by(self, row: Mapping[str, Any], stories: frozenset[str] | None = None) -> bool:
        """``stories``: the gold stories of the row (:func:`row_stories`); None skips the story test."""
        if row.get("kind") not in self.kinds or not self.quantity.matches(str(row.get("about", ""))):
            return False
        if self.story is not None and stories is not None and self.story not in stories:
            return False
        if not self.values:
            return True
        return any(value_matches(str(s.get("value", "")), v) for s in row.get("sides", []) for v in self.values)


@dataclass(frozen=True)
class GoldSet:
    name: str
    articles: tuple[str, ...]
    contradictions: tuple[GoldContradiction, ...]
    not_contradictions: tuple[LookAlike, ...] = ()
    input: Path | None = None  # articles to replay, resolved against the gold file's folder
    stories: Mapping[str, str] = field(default_factory=dict)  # article id -> gold story, when given


def gold_assignments(gold: GoldSet) -> dict[str, str]:
    """Article id -> gold story id, to replay with the gold grouping
    (``pipeline.replay.replay(stories=...)``); GoldError when the gold names no stories."""
    if not gold.stories:
        raise GoldError(f"{gold.name}: `articles` is a list, not a mapping of gold stories to articles")
    return dict(gold.stories)


def row_stories(row: Mapping[str, Any], gold: GoldSet) -> frozenset[str]:
    """The gold stories a reported contradiction belongs to: those of the articles on its sides
    when the gold names stories, else its own (replayed) story id."""
    if not gold.stories:
        return frozenset({str(row.get("story", ""))})
    return frozenset(gold.stories[a] for s in row.get("sides", []) for a in s.get("articles", []) if a in gold.stories)


def _articles(raw: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """``articles`` as a list (no stories) or a mapping gold story -> list of article ids."""
    if not isinstance(raw, Mapping):
        return _strs(raw, "articles"), {}
    stories: dict[str, str] = {}
    for story, ids in raw.items():
        for a in _strs(ids, f"articles.{story}"):
            if a in stories and stories[a] != str(story):
                raise GoldError(f"articles: {a} is in two stories ({stories[a]}, {story})")
            stories[a] = str(story)
    return tuple(stories), stories


def _strs(x: Any, where: str) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, (str, int, float)):
        return (str(x),)
    if isinstance(x, list) and all(isinstance(v, (str, int, float)) for v in x):
        return tuple(str(v) for v in x)
    raise GoldError(f"{where}: expected a string or a list of strings, got {x!r}")


def _kinds(x: Any, default: Iterable[str], where: str) -> frozenset[str]:
    kinds = frozenset(_strs(x, where)) if x is not None else frozenset(default)
    bad = kinds - set(KINDS)
    if bad or not kinds:
        raise GoldError(f"{where}: kinds must be among {KINDS}, got {sorted(kinds)}")
    return kinds


def _quantity(raw: Any, where: str) -> QuantityMatcher:
    if isinstance(raw, str):
        return QuantityMatcher(about=raw)
    if not isinstance(raw, dict):
        raise GoldError(f"{where}: `quantity` must be a mapping (predicate/theme/event or about)")
    unknown = set(raw) - {"predicate", "theme", "event", "about"}
    if unknown:
        raise GoldError(f"{where}: unknown quantity fields {sorted(unknown)}")
    return QuantityMatcher(
        predicate=str(raw.get("predicate", "*")),
        theme=str(raw.get("theme", "*")),
        event=str(raw.get("event", "*")),
        about=str(raw["about"]) if "about" in raw else None,
    )


def _part(raw: dict, kinds: frozenset[str], where: str) -> GoldPart:
    if "quantity" not in raw or "sides" not in raw:
        raise GoldError(f"{where}: a part needs `quantity` and `sides`")
    sides = []
    for i, s in enumerate(raw["sides"] or []):
        w = f"{where}.sides[{i}]"
        if not isinstance(s, dict) or "value" not in s:
            raise GoldError(f"{w}: a side needs a `value`")
        sides.append(GoldSide(_strs(s["value"], w), _strs(s.get("articles"), w), _strs(s.get("attributed_to"), w)))
    if len(sides) < 2:
        raise GoldError(f"{where}: a contradiction has at least two sides")
    return GoldPart(_quantity(raw["quantity"], where), _kinds(raw.get("accept"), kinds, where), tuple(sides))


def _story(raw: Mapping[str, Any], where: str) -> str | None:
    story = raw.get("story")
    if story is not None and not isinstance(story, (str, int)):
        raise GoldError(f"{where}: `story` must be a gold story id")
    return None if story is None else str(story)


def parse_gold(raw: Mapping[str, Any], base: Path | None = None) -> GoldSet:
    """A :class:`GoldSet` from the parsed YAML mapping; ``base`` resolves ``input``."""
    if not isinstance(raw, Mapping):
        raise GoldError("the gold file must be a mapping")
    golds = []
    for i, c in enumerate(raw.get("contradictions") or []):
        where = f"contradictions[{i}]"
        if not isinstance(c, dict) or "id" not in c or "kind" not in c:
            raise GoldError(f"{where}: needs `id` and `kind`")
        kind = str(c["kind"])
        if kind not in KINDS:
            raise GoldError(f"{where}: kind must be one of {KINDS}")
        accept = _kinds(c.get("accept"), [kind], where)
        raw_parts = c.get("parts") or [c]
        parts = tuple(_part(p, accept, f"{where}.parts[{j}]") for j, p in enumerate(raw_parts))
        golds.append(GoldContradiction(str(c["id"]), kind, parts, str(c.get("note", "")).strip(), _story(c, where)))
    looks = []
    for i, n in enumerate(raw.get("not_contradictions") or []):
        where = f"not_contradictions[{i}]"
        if not isinstance(n, dict) or "id" not in n or "quantity" not in n:
            raise GoldError(f"{where}: needs `id` and `quantity`")
        looks.append(
            LookAlike(
                str(n["id"]),
                _quantity(n["quantity"], where),
                _kinds(n.get("kinds"), KINDS, where),
                _strs(n.get("values"), where),
                str(n.get("note", "")).strip(),
                _story(n, where),
            )
        )
    ids = [g.id for g in golds] + [x.id for x in looks]
    if len(ids) != len(set(ids)):
        raise GoldError("ids of contradictions and not_contradictions must be unique")
    articles, stories = _articles(raw.get("articles"))
    for entry in [*golds, *looks]:
        if entry.story is not None and stories and entry.story not in set(stories.values()):
            raise GoldError(f"{entry.id}: story {entry.story!r} is not a key of `articles`")
    inp = raw.get("input")
    return GoldSet(
        name=str(raw.get("name", "gold")),
        articles=articles,
        stories=stories,
        contradictions=tuple(golds),
        not_contradictions=tuple(looks),
        input=(base / str(inp)).resolve() if inp and base is not None else (Path(str(inp)) if inp else None),
    )


def load_gold(path: Path) -> GoldSet:
    """Read a gold YAML file (``yaml.safe_load``); GoldError says what is wrong with it."""
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        raise GoldError(f"{path}: not valid YAML: {e}") from None
    try:
        return parse_gold(raw, path.parent)
    except GoldError as e:
        raise GoldError(f"{path}: {e}") from None


def load_replay(folder: Path) -> tuple[list[dict], dict[str, str]]:
    """(contradiction rows, article id -> story id) from a ``crosswire replay --out`` folder."""

    def rows(name: str) -> list[dict]:
        p = folder / name
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (is {folder} a replay output folder?)")
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]

    return rows("contradictions.jsonl"), {r["id"]: r["story"] for r in rows("assignments.jsonl")}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SideMiss:
    gold: str  # gold contradiction id
    quantity: str
    value: str
    reason: str  # "not reported" | "no side with this value" | "missing articles: ..."


@dataclass(frozen=True)
class Reported:
    """A reported contradiction, as shown in listings."""

    story: str
    kind: str
    about: str
    sides: tuple[tuple[str, tuple[str, ...]], ...]  # (value, articles)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Reported:
        return cls(
            str(row.get("story", "")),
            str(row.get("kind", "")),
            str(row.get("about", "")),
            tuple((str(s.get("value", "")), tuple(s.get("articles", []))) for s in row.get("sides", [])),
        )

    def describe_sides(self) -> str:
        return "; ".join(f"{v} [{', '.join(a)}]" for v, a in self.sides)


@dataclass(frozen=True)
class FalsePositive:
    reported: Reported
    reason: str  # "unexpected" | "look-alike <id>" | "duplicate of <gold id> (another story)"


@dataclass(frozen=True)
class Violation:
    look_alike: str
    reported: Reported


@dataclass(frozen=True)
class GoldResult:
    gold: GoldContradiction
    found: bool
    sides_matched: int
    sides_total: int
    matched_by: tuple[Reported, ...]
    misses: tuple[SideMiss, ...]
    attribution_misses: tuple[SideMiss, ...] = ()


@dataclass
class Counts:
    reported: int = 0
    true_positives: int = 0  # reported that match a gold part
    gold: int = 0
    found: int = 0

    @property
    def precision(self) -> float:
        return self.true_positives / self.reported if self.reported else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0


@dataclass
class Score:
    name: str
    by_kind: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    results: list[GoldResult] = field(default_factory=list)
    false_positives: list[FalsePositive] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    extra_sides: list[tuple[str, Reported, str]] = field(default_factory=list)  # (gold id, reported, value)
    gold_sides: int = 0
    gold_sides_matched: int = 0
    reported_sides: int = 0  # sides of reported contradictions that matched a gold part
    reported_sides_matched: int = 0
    stories: tuple[str, ...] = ()

    @property
    def overall(self) -> Counts:
        c = Counts()
        for k in self.by_kind.values():
            c.reported += k.reported
            c.true_positives += k.true_positives
            c.gold += k.gold
            c.found += k.found
        return c

    @property
    def side_precision(self) -> float:
        return self.reported_sides_matched / self.reported_sides if self.reported_sides else 1.0

    @property
    def side_recall(self) -> float:
        return self.gold_sides_matched / self.gold_sides if self.gold_sides else 1.0

    @property
    def misses(self) -> list[SideMiss]:
        return [m for r in self.results for m in r.misses]


# --------------------------------------------------------------------------- scoring


def _check_part(
    gold_id: str, part: GoldPart, rows: Sequence[Mapping[str, Any]]
) -> tuple[int, list[SideMiss], list[SideMiss], list[tuple[Mapping, str]]]:
    """(sides matched, misses, attribution misses, extra (row, value)) of a part against the rows
    of one story that match it."""
    q = part.quantity.describe()
    if not rows:
        return 0, [SideMiss(gold_id, q, s.describe(), "not reported") for s in part.sides], [], []
    reported = [(row, s) for row in rows for s in row.get("sides", [])]
    matched = 0
    misses: list[SideMiss] = []
    attribution: list[SideMiss] = []
    used: set[int] = set()
    for gs in part.sides:
        hits = [(i, s) for i, (_, s) in enumerate(reported) if gs.value_ok(str(s.get("value", "")))]
        used.update(i for i, _ in hits)
        if not hits:
            misses.append(SideMiss(gold_id, q, gs.describe(), "no side with this value"))
            continue
        arts = {a for _, s in hits for a in s.get("articles", [])}
        lacking = [a for a in gs.articles if a not in arts]
        if lacking:
            misses.append(SideMiss(gold_id, q, gs.describe(), "missing articles: " + ", ".join(lacking)))
            continue
        matched += 1
        sources = [str(a) for _, s in hits for a in s.get("attributed_to", [])]
        for pat in gs.attributed_to:
            if not any(_glob(src, pat) for src in sources):
                attribution.append(SideMiss(gold_id, q, gs.describe(), f"no source like {pat!r} (got {sources})"))
    extra = [(row, str(s.get("value", ""))) for i, (row, s) in enumerate(reported) if i not in used]
    return matched, misses, attribution, extra


def score(gold: GoldSet, contradictions: Iterable[Mapping[str, Any]], assignments: Mapping[str, str]) -> Score:
    """Score reported contradictions (``contradictions.jsonl`` rows) against a gold set; see the
    module docstring for the rules. Pure and deterministic."""
    stories = tuple(sorted({assignments[a] for a in gold.articles if a in assignments}))
    in_scope = [r for r in contradictions if r.get("story") in stories]
    out = Score(gold.name, stories=stories)

    gold_of = [row_stories(r, gold) for r in in_scope]
    # which gold part each reported contradiction matches (first in file order)
    part_of: dict[int, tuple[int, int]] = {}
    for i, row in enumerate(in_scope):
        for gi, g in enumerate(gold.contradictions):
            if g.story is not None and g.story not in gold_of[i]:
                continue
            hit = next(
                (pi for pi, p in enumerate(g.parts) if row.get("kind") in p.kinds and p.quantity.matches(str(row.get("about", "")))),
                None,
            )
            if hit is not None:
                part_of[i] = (gi, hit)
                break

    duplicates: dict[int, str] = {}
    for gi, g in enumerate(gold.contradictions):
        total_sides = sum(len(p.sides) for p in g.parts)
        # the story where this gold contradiction is best matched
        best: tuple[int, str | None] = (-1, None)
        for story in stories or ("",):
            n = 0
            for pi, p in enumerate(g.parts):
                rows = [r for i, r in enumerate(in_scope) if part_of.get(i) == (gi, pi) and r.get("story") == story]
                n += _check_part(g.id, p, rows)[0] + (1 if rows else 0)
            if n > best[0]:
                best = (n, story)
        story = best[1]
        matched = 0
        misses: list[SideMiss] = []
        attribution: list[SideMiss] = []
        by: list[Reported] = []
        for pi, p in enumerate(g.parts):
            idx = [i for i in range(len(in_scope)) if part_of.get(i) == (gi, pi)]
            rows = [in_scope[i] for i in idx if in_scope[i].get("story") == story]
            for i in idx:
                if in_scope[i].get("story") != story:
                    duplicates[i] = g.id
            m, mi, at, extra = _check_part(g.id, p, rows)
            matched += m
            misses += mi
            attribution += at
            by += [Reported.of(r) for r in rows]
            out.reported_sides += sum(len(r.get("sides", [])) for r in rows)
            out.reported_sides_matched += sum(len(r.get("sides", [])) for r in rows) - len(extra)
            out.extra_sides += [(g.id, Reported.of(r), v) for r, v in extra]
        found = matched == total_sides
        out.results.append(GoldResult(g, found, matched, total_sides, tuple(by), tuple(misses), tuple(attribution)))
        out.gold_sides += total_sides
        out.gold_sides_matched += matched
        out.by_kind[g.kind].gold += 1
        out.by_kind[g.kind].found += int(found)

    for i, row in enumerate(in_scope):
        kind = str(row.get("kind", ""))
        counts = out.by_kind.setdefault(kind, Counts())
        counts.reported += 1
        rep = Reported.of(row)
        looks = [x.id for x in gold.not_contradictions if x.violated_by(row, gold_of[i])]
        out.violations += [Violation(x, rep) for x in looks]
        if i in duplicates:
            out.false_positives.append(FalsePositive(rep, f"duplicate of {duplicates[i]} (another story)"))
        elif i in part_of:
            counts.true_positives += 1
        else:
            out.false_positives.append(FalsePositive(rep, f"look-alike {', '.join(looks)}" if looks else "unexpected"))
    return out


__all__ = [
    "Counts",
    "FalsePositive",
    "GoldContradiction",
    "GoldError",
    "GoldPart",
    "GoldResult",
    "GoldSet",
    "GoldSide",
    "LookAlike",
    "QuantityMatcher",
    "Reported",
    "Score",
    "SideMiss",
    "Violation",
    "load_gold",
    "load_replay",
    "parse_gold",
    "gold_assignments",
    "parse_value",
    "render",
    "row_stories",
    "score",
    "split_about",
    "value_matches",
]


# --------------------------------------------------------------------------- display


def render(s: Score) -> list[Any]:
    """Rich renderables for a score: P/R per kind, gold results, false positives, look-alike
    violations and extra sides."""
    from rich.markup import escape
    from rich.table import Table

    def ratio(value: float, denominator: int) -> str:
        return f"{value:.3f}" if denominator else "-"

    out: list[Any] = []
    t = Table(title=f"contradictions on {s.name} ({len(s.stories)} stor{'y' if len(s.stories) == 1 else 'ies'})")
    for col in ("kind", "reported", "correct", "precision", "gold", "found", "recall"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    rows = [(k, s.by_kind[k]) for k in s.by_kind] + [("overall", s.overall)]
    for name, c in rows:
        t.add_row(name, str(c.reported), str(c.true_positives), ratio(c.precision, c.reported), str(c.gold), str(c.found),
                  ratio(c.recall, c.gold), style="bold" if name == "overall" else None)
    t.add_row("sides", str(s.reported_sides), str(s.reported_sides_matched), ratio(s.side_precision, s.reported_sides),
              str(s.gold_sides), str(s.gold_sides_matched), ratio(s.side_recall, s.gold_sides), style="dim")
    t.caption = "precision rows count reported kinds, recall rows gold kinds; sides: of matched contradictions"
    out.append(t)

    g = Table(title="gold contradictions", show_lines=True)
    for col in ("gold", "kind", "found", "sides", "reported as", "misses"):
        g.add_column(col, overflow="fold")
    for r in s.results:
        g.add_row(
            escape(r.gold.id), r.gold.kind, "[green]yes[/]" if r.found else "[red]no[/]", f"{r.sides_matched}/{r.sides_total}",
            escape("\n".join(f"{x.kind} {x.about}: {x.describe_sides()}" for x in r.matched_by) or "-"),
            escape("\n".join(f"{m.quantity} {m.value}: {m.reason}" for m in r.misses + r.attribution_misses) or "-"),
        )
    out.append(g)

    def listing(title: str, items: Sequence[tuple[str, Reported]]) -> None:
        if not items:
            out.append(f"[green]no {title}[/]")
            return
        x = Table(title=title, show_lines=True)
        for col in ("why", "kind", "about", "sides", "story"):
            x.add_column(col, overflow="fold")
        for why, rep in items:
            x.add_row(escape(why), rep.kind, escape(rep.about), escape(rep.describe_sides()), rep.story)
        out.append(x)

    listing("false positives", [(f.reason, f.reported) for f in s.false_positives])
    listing("look-alikes reported", [(v.look_alike, v.reported) for v in s.violations])
    listing("extra sides", [(f"{gid}: side {value}", rep) for gid, rep, value in s.extra_sides])
    return out
