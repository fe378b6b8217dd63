"""Stage 5's state: what one story knows (its articles, claims and contradictions).

A :class:`StoryRecord` is a plain JSON-able value. The worker keeps one per story in a faust table
(its changelog makes it survive restarts) and ``replay`` keeps them in a dict; both call
:func:`apply`, which is pure: the same record and article give the same result, and applying an
article the record already holds changes nothing (at-least-once delivery replays messages).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .contradict import ArticleInfo, diff, find_contradictions
from .types import Claim, Contradiction, LinkedArticle, Story

#: How many canonical entities a story lists as its main ones.
MAIN_ENTITIES = 8
#: Bounds that keep a story's state (and its changelog message) the same size however many
#: reports it gets: the idempotence window of article ids, the reports kept per distinct report
#: (same quantity, value, speaker and outlet), all claims, and entity counts.
RECENT_ARTICLES = 256
REPORTS_PER_KEY = 3
REPORTS_PER_VALUE = 6
MAX_CLAIMS = 120
HARD_MAX_CLAIMS = 200
#: An article adds at most this many claims to its story's state (its first, in text order; all of
#: them are still indexed): one long report of repeated casualty lines gave 1,241 claims, a story
#: record over Kafka's 1 MiB message limit.
MAX_ARTICLE_CLAIMS = 60
MAX_ENTITY_COUNTS = 1000
MAX_OUTLETS = 500


class StoryRecord(BaseModel):
    """What one story keeps. Bounded whatever the story's size (see :func:`apply`): ``order`` is the
    last ``RECENT_ARTICLES`` article ids, ``articles`` holds those plus every article a kept claim
    comes from (and the originals they copy), ``claims`` drops reports that only repeat kept ones."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    articles: dict[str, ArticleInfo] = {}
    order: tuple[str, ...] = ()  # the most recent article ids, in the order they joined
    size: int = 0  # articles in all
    outlets: tuple[str, ...] = ()  # sorted, at most MAX_OUTLETS
    claims: tuple[Claim, ...] = ()
    contradictions: tuple[Contradiction, ...] = ()
    entity_counts: dict[str, int] = {}
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def story(self) -> Story:
        ents = sorted(self.entity_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAIN_ENTITIES]
        return Story(
            id=self.id,
            title=self.title,
            articles=self.order,
            outlets=self.outlets,
            entities=tuple(k for k, _ in ents),
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            size=max(self.size, len(self.order)),
        )


Event = tuple[Literal["new", "update"], Contradiction]


def apply(record: StoryRecord | None, linked: LinkedArticle, seen: datetime) -> tuple[StoryRecord, list[Event]]:
    """Add one linked article to its story. Returns the new record and the contradictions that are
    new or updated because of it. ``seen`` is when the worker first handled the article (a
    parameter, so that replay is deterministic)."""
    a = linked.analysed
    art = a.article
    story_id = linked.link.story
    if record is None:
        record = StoryRecord(id=story_id, title=a.title)
    if art.id in record.articles or art.id in record.order:
        return record, []
    info = ArticleInfo(
        outlet=art.source,
        published=art.published,
        duplicate_of=linked.link.duplicate_of,
        seen=seen,
    )
    articles = {**record.articles, art.id: info}
    added = tuple(c.model_copy(update={"story": story_id}) for c in a.claims[:MAX_ARTICLE_CLAIMS])
    if added and _redundant(added, record.claims, articles):
        added = ()  # another copy of reports the story already holds enough of
    claims = record.claims + added
    counts = Counter(record.entity_counts)
    counts.update({e.canonical for e in a.entities})  # once per article: how many reports name it
    if len(counts) > MAX_ENTITY_COUNTS:
        counts = Counter(dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: MAX_ENTITY_COUNTS * 3 // 4]))
    if added:
        found = find_contradictions(story_id, claims, articles, now=seen)
        events = diff(record.contradictions, found)
        # Carry versions forward: diff() numbers updated contradictions from the old ones.
        by_id = {c.id: c for _, c in events}
        current = tuple(by_id.get(c.id, _keep_version(record.contradictions, c)) for c in found)
    else:
        # no claim kept: the contradictions cannot change (they are a function of the claims)
        events, current = [], record.contradictions
    order = (record.order + (art.id,))[-RECENT_ARTICLES:]
    outlets = record.outlets or tuple(sorted({i.outlet for i in record.articles.values() if i.outlet}))
    if art.source and art.source not in outlets and len(outlets) < MAX_OUTLETS:
        outlets = tuple(sorted((*outlets, art.source)))
    times = [t for t in (record.first_seen, seen) if t is not None]
    new = record.model_copy(
        update={
            "articles": _kept_articles(articles, order, claims),
            "order": order,
            "size": max(record.size, len(record.order)) + 1,
            "outlets": outlets,
            "claims": claims,
            "contradictions": current,
            "entity_counts": dict(counts),
            "first_seen": min(times),
            "last_seen": max([t for t in (record.last_seen, seen) if t is not None]),
        }
    )
    return new, events


def _report_key(c: Claim, articles: dict[str, ArticleInfo], *, with_source: bool) -> tuple:
    """What makes a report distinct: the quantity, its value, polarity and whether it is stated as
    a revision ("the toll rose to 10" supersedes lower figures; a plain "10 killed" does not), and
    (``with_source``) who said it in which outlet."""
    value = (c.value.lo, c.value.hi) if c.value is not None else None
    key: tuple = (c.predicate, c.theme, c.event, c.kind, value, c.slot, c.polarity, c.revision)
    if with_source:
        info = articles.get(c.article_id)
        key += (c.source_kind, c.source.lower(), info.outlet if info else None)
    return key


def _redundant(added: tuple[Claim, ...], held: tuple[Claim, ...], articles: dict[str, ArticleInfo]) -> bool:
    """True when a new article's claims add nothing a contradiction needs, so they are not kept
    (the article is still indexed and counted). That is when every one of them

    - repeats a report the story holds ``REPORTS_PER_KEY`` times (same quantity, value, speaker
      and outlet), or a value it holds ``REPORTS_PER_VALUE`` times from any sources (the side has
      enough sources to show; more outlets saying 14 add no new side), or
    - once the story holds ``MAX_CLAIMS`` claims, repeats a value it holds at all;

    and always once it holds ``HARD_MAX_CLAIMS``. An article is kept or dropped whole, so a denial
    never loses the claim it denies."""
    if len(held) >= HARD_MAX_CLAIMS:
        return True
    values = Counter(_report_key(c, articles, with_source=False) for c in held)
    if len(held) >= MAX_CLAIMS:
        return all(values[_report_key(c, articles, with_source=False)] > 0 for c in added)
    reports = Counter(_report_key(c, articles, with_source=True) for c in held)
    return all(
        reports[_report_key(c, articles, with_source=True)] >= REPORTS_PER_KEY
        or values[_report_key(c, articles, with_source=False)] >= REPORTS_PER_VALUE
        for c in added
    )


def _kept_articles(articles: dict[str, ArticleInfo], order: tuple[str, ...], claims: tuple[Claim, ...]) -> dict[str, ArticleInfo]:
    """The article infos still needed: the idempotence window, the articles of kept claims and the
    originals they copy (``duplicate_of`` chains decide which sources are independent)."""
    keep = set(order) | {c.article_id for c in claims}
    for aid in list(keep):
        current = articles.get(aid)
        while current is not None and current.duplicate_of and current.duplicate_of not in keep:
            keep.add(current.duplicate_of)
            current = articles.get(current.duplicate_of)
    return {k: v for k, v in articles.items() if k in keep}


def _keep_version(old: tuple[Contradiction, ...], c: Contradiction) -> Contradiction:
    for o in old:
        if o.id == c.id:
            return c.model_copy(update={"version": o.version, "first_seen": o.first_seen})
    return c
