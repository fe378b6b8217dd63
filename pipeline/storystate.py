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


class StoryRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    articles: dict[str, ArticleInfo] = {}
    order: tuple[str, ...] = ()  # article ids in the order they joined
    claims: tuple[Claim, ...] = ()
    contradictions: tuple[Contradiction, ...] = ()
    entity_counts: dict[str, int] = {}
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def story(self) -> Story:
        outlets = sorted({a.outlet for a in self.articles.values() if a.outlet})
        ents = sorted(self.entity_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAIN_ENTITIES]
        return Story(
            id=self.id,
            title=self.title,
            articles=self.order,
            outlets=tuple(outlets),
            entities=tuple(k for k, _ in ents),
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            size=len(self.order),
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
    if art.id in record.articles:
        return record, []
    info = ArticleInfo(
        outlet=art.source,
        published=art.published,
        duplicate_of=linked.link.duplicate_of,
        seen=seen,
    )
    articles = {**record.articles, art.id: info}
    claims = record.claims + tuple(c.model_copy(update={"story": story_id}) for c in a.claims)
    counts = Counter(record.entity_counts)
    counts.update({e.canonical for e in a.entities})  # once per article: how many reports name it
    found = find_contradictions(story_id, claims, articles, now=seen)
    events = diff(record.contradictions, found)
    # Carry versions forward: diff() numbers updated contradictions from the old ones.
    by_id = {c.id: c for _, c in events}
    current = tuple(by_id.get(c.id, _keep_version(record.contradictions, c)) for c in found)
    times = [t for t in (record.first_seen, seen) if t is not None]
    new = record.model_copy(
        update={
            "articles": articles,
            "order": record.order + (art.id,),
            "claims": claims,
            "contradictions": current,
            "entity_counts": dict(counts),
            "first_seen": min(times),
            "last_seen": max([t for t in (record.last_seen, seen) if t is not None]),
        }
    )
    return new, events


def _keep_version(old: tuple[Contradiction, ...], c: Contradiction) -> Contradiction:
    for o in old:
        if o.id == c.id:
            return c.model_copy(update={"version": o.version, "first_seen": o.first_seen})
    return c
