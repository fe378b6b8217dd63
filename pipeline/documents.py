"""Search documents: pure functions from pipeline values to bulk actions.

Every function returns one ``elasticsearch.helpers`` bulk action,
``{"_op_type": "index", "_index": ..., "_id": ..., "_source": {...}}``, whose ``_id`` is the id of the
value it describes (article, claim, story, contradiction, alert). Writing the same value twice
therefore overwrites one document instead of adding a second: the sink is idempotent by
construction, and a replay of the stream converges on the same index content.

Contracts:
- index names are parameters (``index=settings.index("articles")``); nothing here reads settings,
  the clock or the network;
- every ``_source`` is JSON-safe (``json.dumps`` accepts it): datetimes become ISO 8601 strings,
  naive datetimes are taken as UTC, tuples become lists;
- field names match ``config/elasticsearch/*.json``; the templates map with ``dynamic: false`` so a
  field added here is stored in ``_source`` but not searchable until the template maps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pipeline.types import AlertRecord, Claim, Contradiction, Interval, LinkedArticle, Side, Story

BulkAction = dict[str, Any]


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with an explicit offset; a naive datetime is taken as UTC (Elasticsearch would
    assume UTC too, but an explicit offset keeps the stored ``_source`` unambiguous)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat()


def _unique(values: Iterable[str | None]) -> list[str]:
    """Distinct non-empty values in first-seen order (stable, so documents are deterministic)."""
    seen: dict[str, None] = {}
    for v in values:
        if v:
            seen.setdefault(v, None)
    return list(seen)


def _action(index: str, doc_id: str, source: dict[str, Any]) -> BulkAction:
    return {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source}


def article_doc(linked: LinkedArticle, indexed_at: datetime, *, index: str) -> BulkAction:
    """The article document (``_id`` = article id): cleaned text, link decision and entity keys."""
    analysed = linked.analysed
    article = analysed.article
    link = linked.link
    source = {
        "id": article.id,
        "url": article.url,
        "outlet": article.source,
        "title": analysed.title,
        "text": analysed.clean_text,
        "language": analysed.language,
        "words": analysed.words,
        "published": iso(article.published),
        "indexed_at": iso(indexed_at),
        "story": link.story,
        "new_story": link.is_new,
        "link_score": link.score,
        "link_candidates": link.candidates,
        "duplicate_of": link.duplicate_of,
        "entities": _unique(e.canonical for e in analysed.entities),
        "entity_labels": _unique(e.label for e in analysed.entities),
        "claim_count": len(analysed.claims),
        "claim_predicates": _unique(c.predicate for c in analysed.claims),
        "skipped": list(analysed.skipped),
    }
    return _action(index, article.id, source)


def _interval_fields(value: Interval | None) -> dict[str, Any]:
    if value is None:
        return {"value_lo": None, "value_hi": None, "hedge": None, "fuzzy": None}
    return {"value_lo": value.lo, "value_hi": value.hi, "hedge": value.hedge, "fuzzy": value.fuzzy}


def display_interval(value: Interval) -> str:
    """A short human form of an interval: ``14``, ``>= 23``, ``19-28``."""

    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if value.hi is None:
        return f">= {num(value.lo)}"
    if value.lo == value.hi:
        return num(value.lo)
    return f"{num(value.lo)}-{num(value.hi)}"


def _claim_doc(claim: Claim, linked: LinkedArticle, *, index: str) -> BulkAction:
    article = linked.analysed.article
    shown = display_interval(claim.value) if claim.value is not None else claim.slot
    source = {
        "id": claim.id,
        "article": claim.article_id,
        # the linker decides the story after extraction, so the link is the authority here
        "story": claim.story or linked.link.story,
        "outlet": article.source,
        "url": article.url,
        "title": linked.analysed.title,
        "published": iso(article.published),
        "predicate": claim.predicate,
        "theme": claim.theme,
        "event": claim.event,
        "kind": claim.kind,
        "value": shown,
        **_interval_fields(claim.value),
        "slot": claim.slot,
        "polarity": claim.polarity,
        "modality": claim.modality,
        "source": claim.source,
        "source_kind": claim.source_kind,
        "sentence": claim.sentence,
        "start": claim.start,
        "end": claim.end,
        "denies": claim.denies,
    }
    return _action(index, claim.id, source)


def claim_docs(linked: LinkedArticle, *, index: str) -> list[BulkAction]:
    """One document per claim of the article (``_id`` = claim id), in extraction order."""
    return [_claim_doc(c, linked, index=index) for c in linked.analysed.claims]


def story_doc(story: Story, *, index: str) -> BulkAction:
    """The story document (``_id`` = story id); later versions of the story overwrite it."""
    source = {
        "id": story.id,
        "title": story.title,
        "articles": list(story.articles),
        "outlets": list(story.outlets),
        "entities": list(story.entities),
        "first_seen": iso(story.first_seen),
        "last_seen": iso(story.last_seen),
        "size": story.size,
        "article_count": len(story.articles),
        "outlet_count": len(_unique(story.outlets)),
    }
    return _action(index, story.id, source)


def _side_source(side: Side) -> dict[str, Any]:
    interval = side.interval
    return {
        "value": side.value,
        "lo": interval.lo if interval else None,
        "hi": interval.hi if interval else None,
        "hedge": interval.hedge if interval else None,
        "articles": list(side.articles),
        "outlets": list(side.outlets),
        "attributed_to": list(side.attributed_to),
        "quotes": list(side.quotes),
        "claim_ids": list(side.claim_ids),
        # outlet, attribution and quote of each report, kept together (stored, not indexed)
        "reports": [r.model_dump(mode="json") for r in side.reports],
    }


def contradiction_summary(c: Contradiction) -> str:
    """One line naming the dispute and its sides: ``numeric about detained:people@raid: 14 vs >= 23``."""
    return f"{c.kind} about {c.about}: " + " vs ".join(s.value for s in c.sides)


def contradiction_doc(c: Contradiction, *, index: str) -> BulkAction:
    """The contradiction document (``_id`` = contradiction id; a new version overwrites it).

    Sides are stored as an object array (Kibana shows those well) and also flattened into keyword
    arrays (``side_values``, ``side_outlets``, ``articles``, ``claim_ids``) for filters and
    aggregations, because object arrays lose which value went with which outlet."""
    outlets = _unique(o for s in c.sides for o in s.outlets)
    source = {
        "id": c.id,
        "story": c.story,
        "kind": c.kind,
        "about": c.about,
        "summary": contradiction_summary(c),
        "internal": c.internal,
        "confidence": c.confidence,
        "first_seen": iso(c.first_seen),
        "last_seen": iso(c.last_seen),
        "version": c.version,
        "side_count": len(c.sides),
        "outlet_count": len(outlets),
        "side_values": _unique(s.value for s in c.sides),
        "side_outlets": outlets,
        "articles": _unique(a for s in c.sides for a in s.articles),
        "claim_ids": _unique(i for s in c.sides for i in s.claim_ids),
        "sides": [_side_source(s) for s in c.sides],
    }
    return _action(index, c.id, source)


def alert_source(a: AlertRecord) -> dict[str, Any]:
    """The ``_source`` of an alert record (also used by the outbox's ``create``)."""
    return {
        "id": a.id,
        "contradiction": a.contradiction,
        "story": a.story,
        "kind": a.kind,
        "status": a.status,
        "channel": a.channel,
        "error": a.error,
        "attempts": a.attempts,
        "created": iso(a.created),
        "sent": iso(a.sent),
        "ts": a.ts,
        "thread_ts": a.thread_ts,
        "story_title": a.story_title,
        "body": a.body,
        "next_attempt": iso(a.next_attempt),
        "digest": a.digest,
    }


def alert_doc(a: AlertRecord, *, index: str) -> BulkAction:
    """The alert record document (``_id`` = the alert's dedupe key)."""
    return _action(index, a.id, alert_source(a))


__all__ = [
    "BulkAction",
    "alert_doc",
    "alert_source",
    "article_doc",
    "claim_docs",
    "contradiction_doc",
    "contradiction_summary",
    "display_interval",
    "iso",
    "story_doc",
]
