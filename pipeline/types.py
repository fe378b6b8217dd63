"""Immutable data types that cross stage and topic boundaries.

Every model here is frozen and JSON round-trips exactly (``Model.model_validate_json(m.model_dump_json())
== m``). spaCy ``Doc`` objects and in-memory indexes never appear here: a stage decodes one of these
at its start and returns one at its end.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def stable_id(*parts: str, length: int = 16) -> str:
    """A deterministic hex id from its parts: the same parts always give the same id."""
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:length]


# --------------------------------------------------------------------------- input


class Article(Frozen):
    """One news article as it arrives on the articles topic. Only ``text`` is required at the
    edge; :func:`pipeline.article.parse_article` fills ``id`` from the content when it is missing."""

    id: str
    text: str
    url: str | None = None
    source: str | None = None  # the outlet, e.g. "Reuters"
    title: str | None = None
    published: datetime | None = None
    language: str | None = None


class DeadLetter(Frozen):
    """A record that could not be processed, with a machine-readable reason. Goes to the
    dead-letter topic; nothing is dropped silently."""

    reason: str  # machine-readable code, e.g. "invalid_json", "missing_text", "too_large"
    message: str  # a human sentence saying what was wrong
    stage: str  # "produce", "parse", "analyse", ...
    key: str | None = None
    payload: str  # the original record (decoded lossily as UTF-8, truncated to a bound)
    at: datetime | None = None


# --------------------------------------------------------------------------- NLP


class Entity(Frozen):
    """A named entity mention with its alias-folded canonical name."""

    text: str  # as written in the article
    label: str  # spaCy / EntityRuler label (ORG, GPE, PERSON, ...)
    canonical: str  # the canonical name (alias table or folded form), used as the entity key
    start: int  # character offsets into the normalised text
    end: int


class Interval(Frozen):
    """A numeric value as a closed interval; ``hi=None`` means unbounded above."""

    lo: float
    hi: float | None
    hedge: str | None = None  # "more than", "at least", "about", "dozens", ... or None when exact
    fuzzy: bool = False  # True when a fuzzy hedge ("about", "nearly", "dozens") set the bounds

    @property
    def exact(self) -> bool:
        return self.hi is not None and self.lo == self.hi


class Claim(Frozen):
    """A factual claim made in one sentence of one article."""

    id: str  # deterministic from article id, offsets and predicate
    article_id: str
    predicate: str  # detained, killed, injured, missing, released, custody, nationality, attacks, troops, count
    theme: str  # the thing counted or described, lemmatised ("fighter", "member", "commander", "detainee")
    event: str  # key of the event frame the claim belongs to (predicate + anchor), see claims.py
    kind: Literal["count", "slot"]
    value: Interval | None = None  # for kind == "count"
    slot: str | None = None  # for kind == "slot": canonical value ("PMF security branch", "U.S. military")
    polarity: Literal["asserted", "denied"] = "asserted"
    modality: Literal["asserted", "reported", "hedged", "doubted"] = "asserted"
    source: str  # who said it: "a PMF official", "police", or the outlet itself
    source_kind: Literal["attributed", "outlet"] = "outlet"
    sentence: str
    start: int  # character offsets of the sentence in the normalised text
    end: int
    denies: str | None = None  # id of the claim this one denies, when resolved in the same article
    story: str | None = None  # filled in after linking
    # True when the sentence states the figure as a count revised UPWARD ("the toll rose to 12",
    # "raising the toll to 12", "12, up from 9"): pipeline.contradict reads lower figures as superseded
    revision: bool = False


class LinkFeatures(Frozen):
    """What the story linker reads from the spaCy pass (no second NLP pass)."""

    title_tokens: tuple[str, ...] = ()
    body_tokens: tuple[str, ...] = ()
    title_lemmas: tuple[str, ...] = ()
    body_lemmas: tuple[str, ...] = ()
    title_entities: tuple[str, ...] = ()  # canonical entity keys
    body_entities: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()  # salient numbers and dates as written, normalised
    fingerprint: tuple[int, ...] = ()  # shingle min-hashes for near-duplicate detection
    sentences: tuple[int, ...] = ()  # per-sentence lemma sketches for reworded copies (pipeline.dedup)
    # spaCy labels of title_entities/body_entities, position by position (empty when unknown)
    title_entity_labels: tuple[str, ...] = ()
    body_entity_labels: tuple[str, ...] = ()


class AnalysedArticle(Frozen):
    """An article after normalisation, entity extraction and claim extraction."""

    article: Article
    clean_text: str
    title: str  # the given title, or the first line of the cleaned text
    language: str
    words: int
    entities: tuple[Entity, ...] = ()
    features: LinkFeatures = LinkFeatures()
    claims: tuple[Claim, ...] = ()
    skipped: tuple[str, ...] = ()  # stages skipped and why, e.g. ("claims:non-english",)


class LinkDecision(Frozen):
    story: str
    is_new: bool
    score: float  # calibrated probability that the article belongs to ``story``
    duplicate_of: str | None = None  # id of the article this one is a (near-)duplicate of
    candidates: int = 0  # how many candidate stories were scored


class LinkedArticle(Frozen):
    analysed: AnalysedArticle
    link: LinkDecision


class StoryRetired(Frozen):
    """On the linked topic, keyed by the story: the linker retired it (quiet past the horizon), so
    the story's worker may drop its state. Its documents stay in the index."""

    retired: str  # the story id
    at: datetime | None = None  # the arrival time that retired it


# --------------------------------------------------------------------------- outputs


class SideReport(Frozen):
    """One report behind a side: which article said it, through which outlet, on whose word, in
    which sentence. Keeps outlet, attribution and quote together for editors."""

    article: str
    outlet: str | None = None
    attributed_to: str | None = None  # None when the outlet says it in its own voice
    quote: str


class Side(Frozen):
    """One side of a contradiction: a value and everyone who reported it."""

    value: str  # display value: "14", ">= 23", "transferred to PMF security branch", "denied"
    interval: Interval | None = None
    articles: tuple[str, ...]
    outlets: tuple[str, ...] = ()
    attributed_to: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    claim_ids: tuple[str, ...] = ()
    reports: tuple[SideReport, ...] = ()  # one per (article, source, sentence), in text order


class Contradiction(Frozen):
    id: str  # deterministic: stable_id(story, kind, about)
    story: str
    kind: Literal["numeric", "exclusive", "denial"]
    about: str  # the quantity or slot, e.g. "detained:people@raid"
    sides: tuple[Side, ...]
    internal: bool = False  # True when the dispute stands inside one article
    confidence: float = 0.5
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    version: int = 1  # bumped when a side or source is added


class Story(Frozen):
    id: str
    title: str
    articles: tuple[str, ...]
    outlets: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()  # main canonical entities, most frequent first
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    size: int = 0


class AlertRecord(Frozen):
    """An alert about a contradiction, persisted before it is sent (the dedupe key is ``id``)."""

    id: str  # stable_id(contradiction id, version)
    contradiction: str
    story: str
    kind: Literal["new", "update", "digest"]  # "digest": one message summarising held updates of a story
    status: Literal["pending", "held", "sent", "printed", "failed"]  # "held": an update waiting for its digest
    channel: str  # "slack" or "stdout"
    error: str | None = None
    attempts: int = 0
    created: datetime | None = None
    sent: datetime | None = None
    ts: str | None = None  # Slack message timestamp (bot-token delivery only): the thread root of updates
    thread_ts: str | None = None  # the thread this message was posted into, for updates
    story_title: str | None = None
    body: str | None = None  # the contradiction as JSON: enough to rebuild and re-send the message after a crash
    next_attempt: datetime | None = None  # when a failed delivery is due again; None once given up
    digest: str | None = None  # a held update: the id of the digest alert that carries it


Outcome = Literal["ok", "dead_letter", "skipped"]

__all__ = [
    "AlertRecord",
    "AnalysedArticle",
    "Article",
    "Claim",
    "Contradiction",
    "DeadLetter",
    "Entity",
    "Field",
    "Interval",
    "LinkDecision",
    "LinkFeatures",
    "LinkedArticle",
    "Side",
    "SideReport",
    "Story",
    "stable_id",
]
