"""Contradictions between the claims of one story.

:func:`find_contradictions` is stateless and deterministic: given ALL claims a story has collected
so far, it recomputes every contradiction from scratch. Replaying the same claims gives the same
output, and a dispute keeps its id (``stable_id(story, kind, about)``) while new articles add sides
or sources to it. :func:`diff` tells the alerting stage which contradictions are new and which
gained a side or a source since the last run.

Rules (each is a small function below, tested on its own):

1. **Quantities.** Claims are grouped by ``about = "<predicate>:<theme>@<event>"``
   (:func:`about_key`); only claims of one quantity are ever compared. The extractor decides the
   event frame, so "attacks since October" and "attacks in the past two weeks" must arrive with
   different ``event`` keys; the interval test is a second guard.
   **1b. Person groups.** For the predicates that count people (``people_predicates``), a
   count of a kind of person (``person_groups``: protesters, civilians, students ...) is compared
   under the ``people`` quantity of the same predicate and event when the story has a ``people``
   count there ("police arrested 30 people" vs "more than 100 protesters were detained"). Inside
   it the comparison is one-sided (:func:`theme_conflict`): a group can be all or a part of the
   people, never more, so it conflicts only when its figure is LARGER; two different groups
   (protesters, journalists) are never compared. ``commanders`` is a subgroup, not a person
   group: it stays its own quantity. Police are not a person group (counted apart in most stories).
   **1c. Generic counts.** ``predicate="count"`` claims are compared only in the frames of
   ``comparable_count_frames`` (``count:crowd``), and crowd sizes only between attributed reports
   (``attributed_only_frames``): "shot three people" vs "killed one" must raise no alarm.
2. **Numeric** (kind ``"numeric"``). Every distinct interval of a quantity is a candidate side.
   Two sides conflict when their intervals are disjoint (:func:`pipeline.intervals.conflict`) and
   the disjoint pair comes from independent reports. Containment and overlap agree. A side that
   conflicts with nobody ("more than a dozen" next to 14, 19 and 23) is not a side of the dispute.
   Sides are ordered by interval (low bound, then high bound).
3. **Independence.** A *report* is ``(root article, source)``: the root follows ``duplicate_of``
   so an article and its copies are one report; the source is the attributed speaker (leading
   article stripped, case-folded) or the outlet's own voice. Two claims conflict only when their
   reports differ, so one article quoting two officials with different figures IS a dispute
   (``internal=True`` when every side comes from one root article). Duplicates of one article
   are one report: they never contradict or support each other.
4. **Denials** (kind ``"denial"``). A denial-like claim (``polarity="denied"`` or
   ``modality="doubted"``) contradicts the claim its ``denies`` field names (same article only),
   or, when ``denies`` is None, the asserted claims of the same quantity made by OTHER sources
   EARLIER IN THE SAME ARTICLE. A generic denial is never matched across articles. When the denier
   also gave a conflicting figure for the same quantity, the numeric contradiction already shows
   the dispute and the denial pair is not repeated.
5. **Exclusive slots** (kind ``"exclusive"``, predicates in ``ContradictConfig.exclusive_predicates``,
   by default ``custody``). Two asserted slot values conflict unless ``relation(a, b)`` says they
   are the same holder or one is part of the other, or one article states them as a sequence
   (the later claim's sentence says "later handed to", "then transferred"...; across articles no
   order is inferred, see :func:`stated_sequence`). A holder made only of vague words
   ("appropriate authorities", "the authorities": ``vague_slot_words``) is no side. Denials and
   doubts of a custody claim (rule 4) join the SAME contradiction as sides ``"denied"`` /
   ``"doubted"``, so "who holds the detainees" is one dispute whatever mix of values and denials
   it has, and keeps one id.
6. **Revisions.** For a monotone predicate (``monotone_predicates``), a later report that is
   larger than an earlier one is an update, not a conflict, when its sentence carries a revision
   marker ("rose to", "now", "updated"...), or, for predicates whose tolls only grow
   (``growing_predicates``: killed, injured), when it was simply published later (a different
   article). A claim the extractor marked as a revision (``Claim.revision``) counts as marked.
   "Later" is the ``published`` time, else ``seen``, of the report's ROOT article (a wire copy
   republished hours later is dated by its original, ``Report.dated``); inside one article, text
   order, and then only a revision marker counts. A monotone count that goes DOWN
   later is still a contradiction, unless the later sentence says it replaces an earlier figure
   (``falling_markers``: "down from 30", "revised down"): missing people are found.
   **6a. Explicit revisions.** A claim the extractor marks as a revision (``Claim.revision``: "the
   death toll rose to 10", "raising the toll to 10", "10, up from 3") says the count was lower
   before, so a LOWER figure of the same monotone quantity is its history, not a side, even when
   the reports carry no times (:func:`superseded_by_revision`): the pair (low, high) is an update
   when some revision goes past the low figure and agrees with the high one, and the low figure
   is not known to come after that revision (then the count went down: still a contradiction;
   "after" is text order in one article, publication time across articles, never arrival).
   A revision that agrees with neither side ("climbed to 23" next to a 14-vs-19 dispute) settles
   nothing.
   **6b. Superseded media reports.** A figure the text itself gives as an earlier media report
   ("local news originally reported that two died"; ``superseded_markers`` in the sentence and a
   ``media_words`` word in the attributed source) is the history of the figure, not a side. An
   official's own earlier figure ("a PMF source initially said 19") stays a side: a source's
   figure is its position in the dispute.
   **6c. Occasions.** A claim's *day* is the one weekday its sentence names (:func:`claim_day`).
   Claims naming different days are about different occasions (different nights of protests,
   another day's attack) and never conflict. A predicate the story also counts over a span of
   several days or nights ("over 50 arrests over four nights": ``series_spans`` on the event
   anchor) is counted per occasion: its claims conflict only when both name the SAME day
   (:func:`series_predicates`), so one night's figure is not weighed against another night's; and
   in such a story a figure for one named day is never weighed against a figure naming no day.
7. **Confidence**, in [0, 1], rounded to 3 decimals::

       strength  = 1.0 hard numeric | 0.6 soft numeric | 0.85 exclusive | 0.8 denial
       support   = mean over sides of (1 - 0.5 ** reports_on_side)   # 1 report .5, 2 .75, 3 .875
       attributed = share of sides with at least one attributed source
       confidence = strength * (0.55 + 0.25 * support + 0.2 * attributed) * (0.85 if internal else 1)

8. **Times.** ``first_seen`` is when the dispute first existed: the minimum, over the conflicting
   claim pairs, of the later ``seen`` of the two articles. ``last_seen`` is the latest ``seen`` of
   any article on any side. ``seen`` falls back to ``published``, then to ``now``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import combinations
from typing import Literal

from pipeline.intervals import conflict as interval_conflict
from pipeline.intervals import fmt, sort_key, upper
from pipeline.types import Claim, Contradiction, Frozen, Interval, Side, SideReport, stable_id

SlotRelation = Literal["same", "part_of", "contains", "different"]
RelationFn = Callable[[str, str], SlotRelation]
Kind = Literal["numeric", "exclusive", "denial"]

UNSPECIFIED_SLOTS = frozenset({"", "unspecified"})


class ArticleInfo(Frozen):
    """What contradiction detection needs to know about an article besides its claims (a frozen
    pydantic model, so a story's state holding these round-trips through JSON)."""

    outlet: str | None = None
    published: datetime | None = None
    duplicate_of: str | None = None  # id of the article this one is a (near-)copy of
    seen: datetime | None = None  # when the worker first saw it


def equal_relation(a: str, b: str) -> SlotRelation:
    """Fallback slot relation: case- and space-insensitive equality, nothing else.

    Deliberately no token containment: "Hezbollah" is not part of "Kataib Hezbollah".
    """
    return "same" if _norm(a) == _norm(b) else "different"


@lru_cache(maxsize=1)
def default_relation() -> RelationFn:
    """``AliasTable.relation`` of the configured alias table (``Settings.aliases_file``), loaded once
    per process; :func:`equal_relation` when the alias module or file is missing. A broken alias
    file raises: that is a start-up error, not something to paper over."""
    try:
        from pipeline.aliases import AliasTable
        from pipeline.settings import get_settings

        path = get_settings().aliases_file
    except ImportError:
        return equal_relation
    if not path.is_file():
        return equal_relation
    return AliasTable.load(path).relation


@dataclass(frozen=True)
class ContradictConfig:
    """Editorial knobs; defaults follow RESEARCH.md §2. Frozen, so one instance can be the default.
    ``relation=None`` means :func:`default_relation` (the configured alias table, loaded once); the
    worker may pass ``AliasTable.relation`` of the table it already holds."""

    monotone_predicates: frozenset[str] = frozenset({"killed", "injured", "detained", "missing", "displaced"})
    growing_predicates: frozenset[str] = frozenset({"killed", "injured"})
    revision_markers: tuple[str, ...] = (
        "rose", "risen", "rises", "climbed", "climbs", "increased", "jumped", "now", "updated",
        "revised", "reached",
    )  # fmt: skip
    sequence_markers: tuple[str, ...] = ("then", "later", "subsequently", "afterwards", "afterward", "eventually")
    # "down from 30", "revised down": a later, SMALLER figure that says it replaces an earlier one
    falling_markers: tuple[str, ...] = (
        "down from", "revised down", "revised downward", "lowered", "fell to", "dropped to", "decreased to",
    )  # fmt: skip
    exclusive_predicates: frozenset[str] = frozenset({"custody"})
    # Rule 6b: an earlier MEDIA report that the text marks as replaced is no side.
    superseded_markers: tuple[str, ...] = (
        "originally", "initially", "at first", "first reported", "earlier reported", "previously reported",
    )  # fmt: skip
    media_words: frozenset[str] = frozenset({
        "news", "media", "report", "reports", "television", "tv", "radio", "press", "newspaper", "newspapers",
        "agency", "outlet", "outlets", "broadcaster", "channel", "station", "wire",
    })  # fmt: skip
    # Rule 6c: a count over several days or nights ("over four nights", "in the past eight days"),
    # in the claim's event anchor or its sentence.
    series_spans: str = r"\b(?:over|in|during|across|after|for)\s+(?:the\s+)?(?:(?:past|last|first)\s+)?[a-z0-9]+\s+(?:nights|days|evenings)\b"
    # Rule 1b: kinds of person whose figure may be all or part of a "people" figure (mirrors
    # ``person_groups`` in config/claims.yaml), for the predicates that count people.
    person_groups: frozenset[str] = frozenset({
        "protesters", "civilians", "children", "students", "workers", "journalists", "passengers", "migrants",
        "hostages", "pilgrims",
    })  # fmt: skip
    people_predicates: frozenset[str] = frozenset({"killed", "injured", "detained", "missing", "released"})
    # Rule 1c: generic counts (``count:<verb>``) are compared only in these frames.
    comparable_count_frames: frozenset[str] = frozenset({"crowd"})
    # Frames whose figures are estimates by nature (crowd sizes): compared only between ATTRIBUTED
    # reports ("organisers said 40,000" vs "police put it at 15,000"); an outlet's own "20,000
    # marched" usually describes another part of the crowd (another city, another day).
    attributed_only_frames: frozenset[str] = frozenset({"crowd"})
    # Holders too vague to be a side of a custody dispute ("handed over to the authorities").
    vague_slot_words: frozenset[str] = frozenset({
        "authorities", "authority", "officials", "appropriate", "relevant", "competent", "proper", "concerned",
        "the",
    })  # fmt: skip
    # How two custody holders relate; None: default_relation() (the configured alias table).
    relation: RelationFn | None = field(default=None, compare=False)

    def slot_relation(self) -> RelationFn:
        return self.relation or default_relation()


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Report:
    """A claim placed in its story: who reported it, through which root article, and when."""

    claim: Claim
    root: str  # article id after following duplicate_of
    source: str  # normalised source key ("outlet" for the outlet's own voice)
    outlet: str | None
    published: datetime | None
    seen: datetime | None
    # (published, seen) of the report's ROOT article: the time its content was first reported, used
    # to order reports (rule 6). Equal to (published, seen) for an original.
    dated: tuple[datetime | None, datetime | None] = (None, None)

    @property
    def key(self) -> tuple[str, str]:
        """Reports with equal keys are NOT independent of each other."""
        return (self.root, self.source)


_ARTICLE_RE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def source_key(claim: Claim) -> str:
    """The speaker of a claim for independence: the outlet's voice is one speaker per article;
    attributed sources are compared without their leading article ("a/the PMF source")."""
    if claim.source_kind != "attributed":
        return "outlet"
    return _norm(_ARTICLE_RE.sub("", claim.source.strip()))


def root_article(article_id: str, articles: Mapping[str, ArticleInfo]) -> str:
    """Follow ``duplicate_of`` to the original article (cycle-safe)."""
    seen: set[str] = set()
    current = article_id
    while current not in seen:
        seen.add(current)
        info = articles.get(current)
        if info is None or not info.duplicate_of:
            return current
        current = info.duplicate_of
    return min(seen)  # a duplicate cycle: pick a stable representative


def make_reports(
    claims: Iterable[Claim], articles: Mapping[str, ArticleInfo], now: datetime | None = None
) -> list[Report]:
    """Claims (deduplicated by id, in a deterministic order) placed as reports.

    A duplicate (``duplicate_of`` set) is dated (``Report.dated``, used to order reports) by its
    root article: a wire copy republished hours later carries the wire's old figure, and dating it
    by its own late ``published`` would make that stale figure look like a later fall of a count
    (rule 6). Its own times are used when the root article is unknown or has none. ``seen`` stays
    the copy's own (rule 8: when the dispute gained that article)."""
    unique = {c.id: c for c in claims}
    out: list[Report] = []
    for c in sorted(unique.values(), key=lambda c: (c.article_id, c.start, c.id)):
        info = articles.get(c.article_id, ArticleInfo())
        root = root_article(c.article_id, articles)
        seen = info.seen or info.published or now
        dated = (info.published, seen)
        if root != c.article_id:
            root_info = articles.get(root)
            if root_info is not None and (root_info.published or root_info.seen):
                dated = (root_info.published, root_info.seen or root_info.published)
        out.append(
            Report(
                claim=c,
                root=root,
                source=source_key(c),
                outlet=info.outlet,
                published=info.published,
                seen=seen,
                dated=dated,
            )
        )
    return out


def independent(a: Report, b: Report) -> bool:
    """Rule 3: different root article or different speaker."""
    return a.key != b.key


# --------------------------------------------------------------------------- rule 1: quantities


def about_key(claim: Claim) -> str:
    """Rule 1: the quantity a claim is about, ``"<predicate>:<theme>@<event>"``."""
    return f"{claim.predicate}:{claim.theme}@{claim.event}"


def comparable(claim: Claim, config: ContradictConfig) -> bool:
    """Rule 1c: a generic count (``predicate="count"``, event ``count:<verb>``) is only compared in
    a frame listed in ``comparable_count_frames`` (crowd sizes); any other generic count ("shot
    three people", "one person") says too little about WHAT is counted to raise an alarm."""
    if claim.predicate != "count":
        return True
    return _frame(claim) in config.comparable_count_frames


def _frame(claim: Claim) -> str:
    return claim.event.split("@", 1)[0].removeprefix("count:")


def quantity_key(claim: Claim, joined: set[tuple[str, str]], config: ContradictConfig) -> str:
    """Rule 1b: the quantity a claim is compared under. A person-group count (``protesters``)
    joins the ``people`` count of the same predicate and event when the story has one."""
    if (
        claim.theme in config.person_groups
        and claim.predicate in config.people_predicates
        and (claim.predicate, claim.event) in joined
    ):
        return f"{claim.predicate}:people@{claim.event}"
    return about_key(claim)


def group_by_about(
    reports: Iterable[Report], config: ContradictConfig = ContradictConfig()  # noqa: B008 - frozen
) -> dict[str, list[Report]]:
    """Reports grouped by the quantity they are compared under (rules 1, 1b, 1c)."""
    reports = [r for r in reports if comparable(r.claim, config)]
    joined = {(r.claim.predicate, r.claim.event) for r in reports if r.claim.theme == "people"}
    groups: dict[str, list[Report]] = defaultdict(list)
    for r in reports:
        groups[quantity_key(r.claim, joined, config)].append(r)
    return dict(groups)


def theme_conflict(a: Claim, b: Claim, level: Literal["none", "soft", "hard"], config: ContradictConfig
                   ) -> Literal["none", "soft", "hard"]:
    """Rule 1b inside a joined quantity: equal themes compare as usual; a person group against
    ``people`` conflicts only when the group's figure is LARGER than the people figure (a group
    can be all of the people or a part of them, never more); two different groups never conflict."""
    if a.theme == b.theme or level == "none":
        return level
    themes = {a.theme, b.theme}
    if "people" not in themes or not themes - {"people"} <= config.person_groups:
        return "none"
    group, people = (a, b) if b.theme == "people" else (b, a)
    assert group.value is not None and people.value is not None
    return level if group.value.lo > upper(people.value) else "none"


def is_denial_like(claim: Claim) -> bool:
    return claim.polarity == "denied" or claim.modality == "doubted"


def is_assertion(claim: Claim) -> bool:
    return not is_denial_like(claim)


# --------------------------------------------------------------------------- rule 6: revisions


def has_marker(sentence: str, markers: Iterable[str]) -> bool:
    """True when any marker occurs in the sentence as a whole word or, for a marker of several
    words, as a whole phrase (case-insensitive)."""
    words = re.findall(r"[a-z]+", sentence.casefold())
    joined = " " + " ".join(words) + " "
    return any((f" {m} " in joined) if " " in m else (m in words) for m in markers)


def _order(a: Report, b: Report) -> tuple[Report, Report, bool] | None:
    """(earlier, later, across_articles) or None when the order is unknown."""
    if a.claim.article_id == b.claim.article_id:
        if a.claim.start == b.claim.start:
            return None
        return (a, b, False) if a.claim.start < b.claim.start else (b, a, False)
    da = a.dated if a.dated != (None, None) else (a.published, a.seen)
    db = b.dated if b.dated != (None, None) else (b.published, b.seen)
    for ta, tb in zip(da, db):
        if ta is not None and tb is not None and ta != tb:
            return (a, b, True) if ta < tb else (b, a, True)
    return None


def is_revision(a: Report, b: Report, config: ContradictConfig) -> bool:
    """Rule 6: is one of two disjoint counts a later, larger update of the other?"""
    pred = a.claim.predicate
    if pred != b.claim.predicate or pred not in config.monotone_predicates:
        return False
    if a.claim.value is None or b.claim.value is None:
        return False
    order = _order(a, b)
    if order is None:
        return False
    earlier, later, across = order
    assert earlier.claim.value is not None and later.claim.value is not None
    if upper(later.claim.value) < earlier.claim.value.lo:
        # smaller: still a contradiction, unless the later report says it replaces an earlier figure
        return has_marker(later.claim.sentence, config.falling_markers)
    if later.claim.value.lo <= upper(earlier.claim.value):
        return False
    if later.claim.revision or has_marker(later.claim.sentence, config.revision_markers):
        return True
    return across and pred in config.growing_predicates


def revisions_of(reports: Iterable[Report]) -> list[Report]:
    """Rule 6a: the asserted, unhedged count reports marked as upward revisions."""
    return [
        r for r in reports
        if r.claim.revision and r.claim.value is not None and is_assertion(r.claim) and r.claim.modality != "hedged"
    ]


def superseded_by_revision(a: Report, b: Report, revisions: Sequence[Report], config: ContradictConfig) -> bool:
    """Rule 6a: is the lower of two disjoint counts an earlier state of the count that an explicit
    revision raised to the higher one? True when some revision of the same monotone predicate is
    above the low figure, agrees with the high figure, and the low figure is not known to come
    after it (:func:`_reported_after`)."""
    pred = a.claim.predicate
    if pred != b.claim.predicate or pred not in config.monotone_predicates:
        return False
    if a.claim.value is None or b.claim.value is None:
        return False
    low, high = (a, b) if sort_key(a.claim.value) <= sort_key(b.claim.value) else (b, a)
    lv, hv = low.claim.value, high.claim.value
    assert lv is not None and hv is not None
    if upper(lv) >= hv.lo:
        return False  # not a lower figure (overlapping intervals do not conflict anyway)
    for r in revisions:
        rv = r.claim.value
        if r.claim.predicate != pred or rv is None or rv.lo <= upper(lv) or interval_conflict(rv, hv) != "none":
            continue
        if _reported_after(low, r):
            continue  # the low figure came after the revision: the count went down
        return True
    return False


def _reported_after(a: Report, b: Report) -> bool:
    """Rule 6a: is ``a`` known to be reported after ``b``? In one article by text order; across
    articles only by publication time (of the root articles), never by arrival: a feed delivers
    late and a replay in any order, and arrival order would turn an early figure that came in
    late into a fall of the count."""
    if a.claim.article_id == b.claim.article_id:
        return a.claim.start > b.claim.start
    pa, pb = a.dated[0] or a.published, b.dated[0] or b.published
    return pa is not None and pb is not None and pa > pb


def superseded(claim: Claim, config: ContradictConfig) -> bool:
    """Rule 6b: an earlier media report the text marks as replaced ("local news originally
    reported that two died") -- not an official's own earlier figure ("a PMF source initially
    said 19"), which stays a position in the dispute."""
    if claim.source_kind != "attributed" or not has_marker(claim.sentence, config.superseded_markers):
        return False
    return bool(set(re.findall(r"[a-z]+", claim.source.casefold())) & config.media_words)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def claim_day(claim: Claim) -> str | None:
    """Rule 6c: the one weekday the claim's sentence names ("46 were arrested Wednesday night" ->
    "wednesday"); None when it names none or several."""
    days = set(re.findall(r"[a-z]+", claim.sentence.casefold())) & set(_WEEKDAYS)
    return next(iter(days)) if len(days) == 1 else None


def series_predicates(claims: Iterable[Claim], config: ContradictConfig) -> frozenset[str]:
    """Rule 6c: predicates the story also counts over a span of days or nights ("over 50 arrests
    over four nights"): their figures are per occasion."""
    span = re.compile(config.series_spans)
    return frozenset(
        c.predicate for c in claims
        if c.kind == "count" and (span.search(c.sentence.casefold()) or span.search(c.event.split("@", 1)[-1]))
    )


def same_occasion(a: Claim, b: Claim, series: frozenset[str] = frozenset()) -> bool:
    """Rule 6c: may two claims be about the same occasion? Not when they name different days; for
    a series predicate, only when both name the same day; in a story counted over several days
    (``series`` not empty), a figure for one named day is a per-occasion count and is not weighed
    against a figure naming no day (that may be a running total)."""
    da, db = claim_day(a), claim_day(b)
    if da is not None and db is not None:
        return da == db
    if a.predicate in series or b.predicate in series:
        return False
    return not series or (da is None and db is None)


# --------------------------------------------------------------------------- sides


@dataclass
class _Pair:
    """A conflicting pair of reports, kept for times and strength."""

    a: Report
    b: Report
    level: Literal["soft", "hard"] = "hard"


def _side(value: str, reports: Sequence[Report], interval: Interval | None = None) -> Side:
    ordered = sorted(reports, key=lambda r: (r.claim.article_id, r.claim.start, r.claim.id))
    quotes: list[str] = []
    for r in ordered:
        if r.claim.sentence not in quotes:
            quotes.append(r.claim.sentence)
    return Side(
        value=value,
        interval=interval,
        articles=tuple(sorted({r.claim.article_id for r in ordered})),
        outlets=tuple(sorted({r.outlet for r in ordered if r.outlet})),
        attributed_to=tuple(sorted({r.claim.source for r in ordered if r.claim.source_kind == "attributed"})),
        quotes=tuple(quotes),
        claim_ids=tuple(sorted({r.claim.id for r in ordered})),
        reports=tuple(
            dict.fromkeys(
                SideReport(
                    article=r.claim.article_id,
                    outlet=r.outlet,
                    attributed_to=r.claim.source if r.claim.source_kind == "attributed" else None,
                    quote=r.claim.sentence,
                )
                for r in ordered
            )
        ),
    )


def _n_reports(side_reports: Sequence[Report]) -> int:
    return len({r.key for r in side_reports})


def confidence(kind: Kind, level: Literal["soft", "hard"], sides: Sequence[Sequence[Report]], internal: bool) -> float:
    """Rule 7 (see the module docstring for the formula)."""
    if not sides:
        return 0.0
    strength = {"numeric": 1.0 if level == "hard" else 0.6, "exclusive": 0.85, "denial": 0.8}[kind]
    support = sum(1 - 0.5 ** _n_reports(s) for s in sides) / len(sides)
    attributed = sum(any(r.claim.source_kind == "attributed" for r in s) for s in sides) / len(sides)
    value = strength * (0.55 + 0.25 * support + 0.2 * attributed) * (0.85 if internal else 1.0)
    return round(min(1.0, max(0.0, value)), 3)


def _times(pairs: Sequence[_Pair], sides: Sequence[Sequence[Report]]) -> tuple[datetime | None, datetime | None]:
    """Rule 8: when the dispute first existed, and the latest article on any side."""
    starts = [max(p.a.seen, p.b.seen) for p in pairs if p.a.seen is not None and p.b.seen is not None]
    ends = [r.seen for s in sides for r in s if r.seen is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _build(
    story: str, kind: Kind, about: str, labelled: Sequence[tuple[Side, Sequence[Report]]], pairs: Sequence[_Pair]
) -> Contradiction:
    side_reports = [reps for _, reps in labelled]
    internal = len({r.root for reps in side_reports for r in reps}) == 1
    level: Literal["soft", "hard"] = "hard" if any(p.level == "hard" for p in pairs) else "soft"
    first, last = _times(pairs, side_reports)
    return Contradiction(
        id=stable_id(story, kind, about),
        story=story,
        kind=kind,
        about=about,
        sides=tuple(side for side, _ in labelled),
        internal=internal,
        confidence=confidence(kind, level, side_reports, internal),
        first_seen=first,
        last_seen=last,
    )


# --------------------------------------------------------------------------- rule 2: numeric


def numeric_values(
    reports: Iterable[Report], config: ContradictConfig = ContradictConfig()  # noqa: B008 - frozen
) -> dict[tuple[float, float], list[Report]]:
    """Asserted count reports of one quantity grouped by interval bounds (equal intervals merge);
    superseded media reports (rule 6b) are left out."""
    values: dict[tuple[float, float], list[Report]] = defaultdict(list)
    for r in reports:
        c = r.claim
        if c.kind == "count" and c.value is not None and is_assertion(c) and not superseded(c, config):
            values[sort_key(c.value)].append(r)
    return dict(values)


PairTest = Callable[[Report, Report], Literal["none", "soft", "hard"]]


def _arrival(r: Report) -> tuple[bool, datetime | None, str]:
    return (r.seen is None, r.seen, r.claim.id)


def witness_pairs(left: Sequence[Report], right: Sequence[Report], test: PairTest) -> list[_Pair]:
    """The few claim pairs that settle a dispute between two sides, instead of all of them.

    Returns [] when no pair passes ``test``; else the pair that conflicted first (smallest later
    ``seen``, which gives ``first_seen``), plus a "hard" pair when the first one is "soft" and a
    hard one exists (which gives the strength). Pairs are visited in arrival order with an early
    exit, so a large story with many reports of each value stays cheap.
    """
    events = sorted([(r, 0) for r in left] + [(r, 1) for r in right], key=lambda e: _arrival(e[0]))
    arrived: tuple[list[Report], list[Report]] = ([], [])
    first: _Pair | None = None
    for r, side in events:
        for other in arrived[1 - side]:
            a, b = (r, other) if side == 0 else (other, r)
            level = test(a, b)
            if level != "none":
                first = _Pair(a, b, level)
                break
        if first is not None:
            break
        arrived[side].append(r)
    if first is None:
        return []
    if first.level == "hard":
        return [first]
    firm_left = [a for a in left if not (a.claim.value and a.claim.value.fuzzy)]
    firm_right = [b for b in right if not (b.claim.value and b.claim.value.fuzzy)]
    for a in firm_left:
        for b in firm_right:
            if test(a, b) == "hard":
                return [first, _Pair(a, b, "hard")]
    return [first]


def numeric_pair_test(
    config: ContradictConfig, series: frozenset[str] = frozenset(), revisions: Sequence[Report] = ()
) -> PairTest:
    """Rule 2 + 3 + 6 on two count reports: their conflict level, or "none" when they agree, are
    not independent, are about different occasions (6c; ``series``: see :func:`series_predicates`),
    or one is a revision of the other (6), or the lower one is superseded by an explicit revision
    (6a; ``revisions``: the quantity's :func:`revisions_of`)."""

    def test(a: Report, b: Report) -> Literal["none", "soft", "hard"]:
        assert a.claim.value is not None and b.claim.value is not None
        level = theme_conflict(a.claim, b.claim, interval_conflict(a.claim.value, b.claim.value), config)
        if level == "none" or not independent(a, b) or not same_occasion(a.claim, b.claim, series):
            return "none"
        if is_revision(a, b, config) or superseded_by_revision(a, b, revisions, config):
            return "none"
        if a.claim.predicate == "count" and _frame(a.claim) in config.attributed_only_frames and not (
            a.claim.source_kind == "attributed" and b.claim.source_kind == "attributed"
        ):
            return "none"
        return level

    return test


def conflicting_pairs(
    left: Sequence[Report],
    right: Sequence[Report],
    config: ContradictConfig,
    series: frozenset[str] = frozenset(),
    revisions: Sequence[Report] = (),
) -> list[_Pair]:
    """Witness pairs (see :func:`witness_pairs`) of a numeric conflict between two value sides."""
    return witness_pairs(left, right, numeric_pair_test(config, series, revisions))


def numeric_contradiction(
    story: str, about: str, reports: Sequence[Report], config: ContradictConfig, series: frozenset[str] = frozenset()
) -> Contradiction | None:
    """Rule 2 on one quantity: None when every reported value agrees with every other.
    ``series``: the story's series predicates (rule 6c)."""
    values = numeric_values(reports, config)
    revisions = revisions_of(reports)
    keys = sorted(values)
    pairs: list[_Pair] = []
    in_dispute: set[tuple[float, float]] = set()
    for ka, kb in combinations(keys, 2):
        if ka[1] >= kb[0]:
            continue  # keys are sorted (lo, hi): these bounds intersect, no pair can conflict
        found = conflicting_pairs(values[ka], values[kb], config, series, revisions)
        if found:
            pairs.extend(found)
            in_dispute.update((ka, kb))
    if not pairs:
        return None
    labelled = []
    test = numeric_pair_test(config, series, revisions)
    for k in keys:
        if k in in_dispute:
            reps = values[k]
            if len({r.claim.theme for r in reps}) > 1:
                # a joined quantity (rule 1b): "2 villagers" agrees with "5 people" even when "2 people"
                # does not, so a report only stands on a side if it conflicts with another side
                others = [o for kk in keys if kk in in_dispute and kk != k for o in values[kk]]
                reps = [r for r in reps if any(test(r, o) != "none" for o in others)]
            interval = _representative(reps)
            labelled.append((_side(fmt(interval), reps, interval), reps))
    return _build(story, "numeric", about, labelled, pairs)


def _representative(reps: Sequence[Report]) -> Interval:
    """The interval shown for a side: a non-fuzzy one when any report gave it exactly."""
    ivs = [r.claim.value for r in reps if r.claim.value is not None]
    return sorted(ivs, key=lambda iv: (iv.fuzzy, iv.hedge or "", iv.model_dump_json()))[0]


# --------------------------------------------------------------------------- rule 4: denials


def _slot_specific(slot: str | None, config: ContradictConfig | None = None) -> bool:
    """A holder that names someone: not empty/"unspecified", and not only vague words
    ("appropriate authorities", "the authorities": any holder could be meant)."""
    if slot is None or _norm(slot) in UNSPECIFIED_SLOTS:
        return False
    vague = (config or ContradictConfig()).vague_slot_words
    return not set(_norm(slot).split()) <= vague


def denial_targets(denial: Report, reports: Sequence[Report], config: ContradictConfig) -> list[Report]:
    """Rule 4: the asserted reports a denial-like claim contradicts.

    ``denies`` set: that claim, if it is in the same article. Otherwise: asserted claims of the
    same quantity, in the same article, earlier in the text (or in the same sentence), by another
    speaker; a denial naming a specific slot only hits claims whose slot is related to it.
    Never across articles.
    """
    d = denial.claim
    same_article = [
        r for r in reports if r.claim.article_id == d.article_id and r.claim.id != d.id and is_assertion(r.claim)
    ]
    if d.denies is not None:
        return [r for r in same_article if r.claim.id == d.denies and independent(r, denial)]
    about = about_key(d)
    rel = config.slot_relation()
    out = []
    for r in same_article:
        c = r.claim
        if about_key(c) != about or c.start > d.start or not independent(r, denial):
            continue
        if _slot_specific(d.slot, config) and _slot_specific(c.slot, config):
            assert d.slot is not None and c.slot is not None
            if rel(d.slot, c.slot) == "different":
                continue
        out.append(r)
    return out


def _answered_by_numbers(denial: Report, target: Report, reports: Sequence[Report]) -> bool:
    """True when the denier also gave a figure for the target's quantity that conflicts with it:
    the numeric contradiction already shows this dispute, with the counter-figure."""
    t = target.claim
    if t.kind != "count" or t.value is None:
        return False
    about = about_key(t)
    for r in reports:
        c = r.claim
        if (
            r.key == denial.key
            and about_key(c) == about
            and is_assertion(c)
            and c.value is not None
            and interval_conflict(c.value, t.value) != "none"
        ):
            return True
    return False


def denial_pairs(reports: Sequence[Report], config: ContradictConfig) -> list[_Pair]:
    """Every (target, denial) pair of the story, in a deterministic order."""
    pairs: list[_Pair] = []
    for d in reports:
        if not is_denial_like(d.claim):
            continue
        for t in denial_targets(d, reports, config):
            if not _answered_by_numbers(d, t, reports):
                pairs.append(_Pair(t, d))
    return pairs


def _label(claim: Claim) -> str:
    return "denied" if claim.polarity == "denied" else "doubted"


_ValueKey = tuple[int, float, float, str]


def _asserted_value(claim: Claim) -> tuple[_ValueKey, str, Interval | None]:
    """(sort key, display, interval) of an asserted claim's value; counts sort before slots."""
    if claim.value is not None:
        lo, hi = sort_key(claim.value)
        return (0, lo, hi, ""), fmt(claim.value), claim.value
    slot = claim.slot or "unspecified"
    return (1, 0.0, 0.0, _norm(slot)), slot, None


def denial_contradictions(story: str, pairs: Sequence[_Pair]) -> list[Contradiction]:
    """Rule 4 for non-exclusive quantities: one contradiction per quantity that was denied,
    sides = the asserted values (ordered) then "denied" / "doubted"."""
    by_about: dict[str, list[_Pair]] = defaultdict(list)
    for p in pairs:
        by_about[about_key(p.a.claim)].append(p)
    out = []
    for about, ps in sorted(by_about.items()):
        asserted: dict[_ValueKey, list[Report]] = defaultdict(list)
        shown: dict[_ValueKey, tuple[str, Interval | None]] = {}
        denials: dict[str, list[Report]] = defaultdict(list)
        for p in ps:
            key, display, interval = _asserted_value(p.a.claim)
            _add_unique(asserted[key], p.a)
            shown.setdefault(key, (display, interval))
            _add_unique(denials[_label(p.b.claim)], p.b)
        labelled = [(_side(shown[k][0], asserted[k], shown[k][1]), asserted[k]) for k in sorted(asserted)]
        labelled += [(_side(lab, denials[lab]), denials[lab]) for lab in sorted(denials)]
        out.append(_build(story, "denial", about, labelled, ps))
    return out


def _add_unique(bucket: list[Report], r: Report) -> None:
    if all(x.claim.id != r.claim.id for x in bucket):
        bucket.append(r)


# --------------------------------------------------------------------------- rule 5: exclusive slots


def slots_conflict(a: Report, b: Report, config: ContradictConfig) -> bool:
    """Two asserted holders conflict unless related (same / part of) or stated as a sequence."""
    if not independent(a, b):
        return False
    sa, sb = a.claim.slot, b.claim.slot
    if not (_slot_specific(sa, config) and _slot_specific(sb, config)):
        return False
    assert sa is not None and sb is not None
    if config.slot_relation()(sa, sb) != "different":
        return False
    return not stated_sequence(a, b, config)


def stated_sequence(a: Report, b: Report, config: ContradictConfig) -> bool:
    """True when one article states the two holders as a sequence: both claims share a root
    article and the later one in the text carries a sequence marker ("later handed to", "then
    transferred"). Across articles no order is inferred: "transferred shortly afterward" (after
    the raid) in one report does not make another report's holder an earlier step."""
    if a.root != b.root or a.claim.article_id != b.claim.article_id:
        return False
    later = b if (b.claim.start, b.claim.end) >= (a.claim.start, a.claim.end) else a
    return has_marker(later.claim.sentence, config.sequence_markers)


def _merge_slot_values(reports: Sequence[Report], config: ContradictConfig) -> list[tuple[str, list[Report]]]:
    """Asserted slot reports grouped by holder; holders the relation calls "same" merge into the
    first in sorted order, so aliases make one side."""
    by_norm: dict[str, list[Report]] = defaultdict(list)
    display: dict[str, str] = {}
    for r in reports:
        assert r.claim.slot is not None
        n = _norm(r.claim.slot)
        by_norm[n].append(r)
        display.setdefault(n, r.claim.slot)
    rel = config.slot_relation()
    merged: list[tuple[str, list[Report]]] = []
    for n in sorted(by_norm):
        for value, reps in merged:
            if rel(value, display[n]) == "same":
                reps.extend(by_norm[n])
                break
        else:
            merged.append((display[n], list(by_norm[n])))
    return merged


def exclusive_contradiction(
    story: str, about: str, reports: Sequence[Report], denials: Sequence[_Pair], config: ContradictConfig
) -> Contradiction | None:
    """Rule 5 on one slot quantity, with its denial pairs (rule 4) as extra sides."""
    asserted = [
        r for r in reports
        if r.claim.kind == "slot" and is_assertion(r.claim) and _slot_specific(r.claim.slot, config)
    ]
    values = _merge_slot_values(asserted, config)
    pairs: list[_Pair] = []
    in_dispute: set[int] = set()
    for (i, (_, ra)), (j, (_, rb)) in combinations(enumerate(values), 2):
        found = witness_pairs(ra, rb, lambda a, b: "hard" if slots_conflict(a, b, config) else "none")
        if found:
            pairs.extend(found)
            in_dispute.update((i, j))
    labelled = [(_side(v, reps), reps) for i, (v, reps) in enumerate(values) if i in in_dispute]
    denied_values = {p.a.claim.id for p in denials}
    for v, reps in (values[i] for i in range(len(values)) if i not in in_dispute):
        hit = [r for r in reps if r.claim.id in denied_values]
        if hit:
            labelled.append((_side(v, hit), hit))
    labelled.sort(key=lambda x: _norm(x[0].value))
    by_label: dict[str, list[Report]] = defaultdict(list)
    for p in denials:
        _add_unique(by_label[_label(p.b.claim)], p.b)
    labelled += [(_side(lab, by_label[lab]), by_label[lab]) for lab in sorted(by_label)]
    pairs.extend(denials)
    if not pairs:
        return None
    return _build(story, "exclusive", about, labelled, pairs)


# --------------------------------------------------------------------------- entry points


def find_contradictions(
    story: str,
    claims: Sequence[Claim],
    articles: Mapping[str, ArticleInfo],
    *,
    now: datetime | None = None,
    config: ContradictConfig = ContradictConfig(),  # noqa: B008 - frozen, safe as a default
) -> list[Contradiction]:
    """All contradictions among ``claims`` (every claim the story has), ordered by (kind, about).

    ``articles`` maps article ids to :class:`ArticleInfo`; an article missing from it is treated
    as an original with no outlet and no times. ``now`` stands in for ``seen`` of articles that
    have neither ``seen`` nor ``published``. Every returned contradiction has ``version=1``; use
    :func:`diff` against the previous output to carry versions forward.
    """
    reports = make_reports(claims, articles, now)
    groups = group_by_about(reports, config)
    series = series_predicates((r.claim for r in reports), config)
    d_pairs = denial_pairs(reports, config)
    out: list[Contradiction] = []
    exclusive_denials: dict[str, list[_Pair]] = defaultdict(list)
    other_denials: list[_Pair] = []
    for p in d_pairs:
        if p.a.claim.predicate in config.exclusive_predicates and p.a.claim.kind == "slot":
            exclusive_denials[about_key(p.a.claim)].append(p)
        else:
            other_denials.append(p)
    for about in sorted(groups):
        reps = groups[about]
        numeric = numeric_contradiction(story, about, reps, config, series)
        if numeric is not None:
            out.append(numeric)
        predicate = reps[0].claim.predicate
        if predicate in config.exclusive_predicates:
            ex = exclusive_contradiction(story, about, reps, exclusive_denials.get(about, []), config)
            if ex is not None:
                out.append(ex)
    out.extend(denial_contradictions(story, other_denials))
    return sorted(out, key=lambda c: (c.kind, c.about))


def _signature(c: Contradiction) -> set[tuple[str, str, str]]:
    sig: set[tuple[str, str, str]] = set()
    for s in c.sides:
        sig.update(("article", s.value, a) for a in s.articles)
        sig.update(("source", s.value, a) for a in s.attributed_to)
        sig.add(("side", s.value, ""))
    return sig


def diff(
    old: Sequence[Contradiction], new: Sequence[Contradiction]
) -> list[tuple[Literal["new", "update"], Contradiction]]:
    """What changed between two outputs of :func:`find_contradictions` for one story.

    ``("new", c)`` for an id not in ``old``; ``("update", c)`` when ``c`` gained a side, an article
    on a side or an attributed source (``version = old.version + 1``, ``first_seen`` kept from
    ``old``). Contradictions that only lost something, stayed the same, or vanished are not
    returned: the caller keeps its stored copy. Output follows the order of ``new``.
    """
    previous = {c.id: c for c in old}
    out: list[tuple[Literal["new", "update"], Contradiction]] = []
    for c in new:
        before = previous.get(c.id)
        if before is None:
            out.append(("new", c))
        elif _signature(c) - _signature(before):
            first = before.first_seen if before.first_seen is not None else c.first_seen
            out.append(("update", c.model_copy(update={"version": before.version + 1, "first_seen": first})))
    return out


__all__ = [
    "ArticleInfo",
    "ContradictConfig",
    "Report",
    "about_key",
    "comparable",
    "denial_targets",
    "diff",
    "default_relation",
    "equal_relation",
    "find_contradictions",
    "group_by_about",
    "has_marker",
    "independent",
    "is_revision",
    "make_reports",
    "numeric_contradiction",
    "numeric_pair_test",
    "quantity_key",
    "revisions_of",
    "root_article",
    "slots_conflict",
    "source_key",
    "stated_sequence",
    "superseded_by_revision",
    "theme_conflict",
    "witness_pairs",
]
