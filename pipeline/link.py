"""Online story linking: each article joins the most likely live story or opens a new one.

After Miranda et al. 2018 (RESEARCH.md §1): a story is the sum of its members' TF-IDF
sub-vectors ({tokens, lemmas, entities, numbers, people, places, groups} × {title, body, all,
lead}; the config picks some) plus its newest, oldest and
mean timestamps. A candidate story is scored by one cosine per sub-vector and, when both sides
have dates, three Gaussian time-decay features; a logistic model turns them into a probability of
"same story". Unlike the reference code:

- IDF is counted online (smoothed document frequencies of the articles seen so far);
- candidates come from an inverted index (entity keys and top terms → stories) capped at
  ``max_candidates``, so the cost per article does not grow with the number of live stories;
- quiet stories retire after ``horizon_days`` and free their vectors;
- near-duplicates (MinHash Jaccard ≥ ``duplicate_jaccard``, or reworded copies by sentence
  alignment, :mod:`pipeline.dedup`) join their original's story.

Contracts:

- Deterministic: the same articles in the same order give the same decisions and story ids
  (``stable_id("story", first_article_id)``). Time is a parameter; the wall clock is never read.
- Idempotent: linking an article id that is already a member of a live story returns the stored
  decision and changes nothing (at-least-once delivery replays messages). The article → decision
  map is kept for live stories only; it is freed when the story retires.
- Restartable: ``export_story``/``export_retired`` plus :meth:`StoryLinker.restore` rebuild the
  same state, so a restored linker decides exactly as an uninterrupted one.

Evidence beyond the centroid cosines (``EVIDENCE_FEATURES`` and the ``entities_lead``,
``tokens_lead`` and ``people_all`` sub-vectors), because two events of one kind (two quakes on
one island, two fights of one boxer) share most words and many names:

- ``entities_lead``/``tokens_lead``: the entities (words) of the title and the first body
  mentions (words), where a report names its event's main actors and place;
- ``people_all``: the people named (spaCy PERSON, keyed by surname, from
  ``LinkFeatures.*_entity_labels``): who the story is about, whatever else it mentions;
- ``max_tokens_all``/``max_entities_all``: cosine to the nearest of the ``recent_members`` last
  members (truncated to ``member_terms``), against a blurred or drifting centroid;
  ``mean_tokens_all``/``mean_entities_all``: the mean over them (cohesion: a same-kind article
  that slipped in once resembles that one member only, so it attracts its kind less);
- ``cover_story_entities``/``cover_article_entities``: share of the story's (article's) top
  ``salient_entities`` entities the other side names;
- ``year_conflict``: both name years and none agree.

The join-or-new decision is the ranking probability against ``threshold`` unless the weights
carry a separate ``join`` model (Miranda et al.'s merge model, :func:`join_features`;
``python -m pipeline.linktrain --join``). It is not shipped: on ECB+ it lowered cross-validated
BCubed F1 (0.887 against 0.916, averaged over orders), being fitted on a class prior (most
top candidates are right) that says little about the costly first wrong join.

Clock: ``now`` (arrival time) alone drives retirement; ``published`` only the time-decay features.

Measured on ECB+ topics 1-20 (413 articles, no dates, worker path as in ``crosswire eval-links``,
shipped weights): BCubed P/R/F1 0.906/0.924/0.915, 50 predicted stories for 36; about 3 ms per
article for linking alone. Cross-validated (train topics 1-10 → test 11-20, and back;
``python -m pipeline.linktrain ... --cv 10``): 0.924 and 0.868. The file order is one arbitrary
order and a single early wrong join moves F1 by 0.01-0.02, so differences below that are noise.
URL titles are read as their path words (reading "http", "www", "com" as title words was worth
about 0.01 on ECB+, where only one subtopic of each topic has URL titles: a corpus quirk that
would make every URL-titled article of a real stream look alike). Two more sub-vectors
(``tokens_lead``, ``people_all``) are available but not default: with them the file-order F1
was 0.899 and CV 0.941/0.875, within noise, and they split the invented quake story (the same
earthquake reported with a rising toll) in two. Previous version (URL words as titles, file
order): 0.907/0.908/0.908, CV 0.939 and 0.903.

Dated articles are scored by the ``timed`` model: the content model plus the time-decay
features with a hand-set prior (ECB+ has no dates; :data:`pipeline.linktrain.TIME_PRIOR`). A
same-day candidate gains one logit, a week-old one loses about 1.3. ``crosswire eval-links
FILE --orders N --dates same|spread`` simulates dates on an undated file to check it.

Memory per live story is bounded whatever its size: ``top_k_terms`` (150) terms per sub-vector,
its document-frequency contribution (at most ``max_story_df`` = 1000 terms; the rarest are
forgotten, globally too), ``recent_members`` (8) truncated member vectors, ``max_fingerprints``
(16) signature rows, the last ``max_decisions`` (128) decisions (the idempotence window: an
article re-delivered after more than that many newer members of its story is linked afresh) and
up to 16 years. Measured with tracemalloc/``sys.getsizeof`` on ECB+ (term strings are interned
and shared between stories, so they are not counted): median 100 KB per story of about 11
members, at most about 165 KB for a story of any size at the caps. The retired aggregate keeps
global document frequencies for at most ``max_df_terms`` (500,000) terms: past that, the rarest
are pruned to three quarters (mostly df 1 names of stories long gone, whose IDF becomes the
maximum, as for an unseen term), so the global df is bounded by ``max_df_terms`` plus the live
stories' contributions and the records not folded yet.

Persisted, the retired aggregate is parts of bounded size (:class:`_Retired`): a record per
retired story (at most ``max_story_df`` terms), written once; every ``retired_fold_every`` (128)
records fold into a new base, written as shards of about ``retired_shard_bytes`` (256 KB) under a
new generation, and the old shards and folded records are deleted. At the ``max_df_terms`` cap the
base is about 10 MB, so a fold costs about 80 KB per retirement, amortized.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from itertools import islice

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.dedup import DUPLICATE_SHARE, find_duplicate
from pipeline.features import N_HASHES
from pipeline.types import LinkDecision, LinkFeatures, stable_id

#: ``changed_stories()`` lists this key when the retired aggregate's base changed (at a fold);
#: ``export_story(RETIRED_KEY)`` is the same as ``export_retired()``.
RETIRED_KEY = "__retired__"
#: Keys of the retired aggregate's parts: ``__retired__/r<n>`` is the record a retired story left
#: (its document frequencies and counters), ``__retired__/g<generation>/<i>`` one shard of the
#: folded base. Every part is small enough for one Kafka message, whatever the stream's length.
RETIRED_PREFIX = RETIRED_KEY + "/"

#: Every sub-vector the linker can keep; the config picks a subset.
ALL_SUBVECTORS: tuple[str, ...] = tuple(
    f"{kind}_{part}"
    for kind in ("tokens", "lemmas", "entities", "numbers", "people", "places", "groups")
    for part in ("title", "body", "all", "lead")
)
#: Entity labels of the typed kinds: who (people, by surname), where (places), which organisation.
TYPED_LABELS: dict[str, frozenset[str]] = {
    "people": frozenset({"PERSON"}),
    "places": frozenset({"GPE", "LOC", "FAC"}),
    "groups": frozenset({"ORG"}),
}
#: The lead is the title plus the first words (entity mentions) of the body: where a report names
#: its event's main actors and place, whatever else it goes on to mention.
LEAD_ITEMS = {"tokens": 40, "lemmas": 40, "entities": 6, "numbers": 4, "people": 3, "places": 3, "groups": 3}
TIME_FEATURES: tuple[str, ...] = ("ts_newest", "ts_oldest", "ts_mean")
#: Features beyond the per-sub-vector cosines: see :meth:`StoryLinker._features`.
EVIDENCE_FEATURES: tuple[str, ...] = (
    "max_tokens_all",
    "max_entities_all",
    "mean_tokens_all",
    "mean_entities_all",
    "cover_story_entities",
    "cover_article_entities",
    "year_conflict",
)
#: Features the join decision adds to the best candidate's: see :func:`join_features`.
JOIN_FEATURES: tuple[str, ...] = ("rank_logit", "rank_margin", "inv_size")
#: The sub-vectors each remembered member keeps (for the max-over-members features).
MEMBER_SUBVECTORS: tuple[str, ...] = ("tokens_all", "entities_all")
_MAX_YEARS = 16
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_PREFIX = {"tokens": "t:", "lemmas": "l:", "entities": "e:", "numbers": "n:", "people": "p:", "places": "g:", "groups": "o:"}
_DAY = 86400.0


class LogisticModel(BaseModel):
    """p = sigmoid(bias + Σ weights[f] · x[f]); features missing from ``weights`` count 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    bias: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)

    def probability(self, x: Mapping[str, float]) -> float:
        z = self.bias + sum(w * x.get(name, 0.0) for name, w in self.weights.items())
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


class LinkWeights(BaseModel):
    """The ranking models: ``content`` scores a candidate when either side has no date, ``timed``
    (content plus time-decay features) when both do. Missing dates are never read as far apart.

    ``join`` (optional) is the separate join-or-new decision (Miranda et al.'s merge model): it
    reads the best candidate's features plus :data:`JOIN_FEATURES` (its ranking logit, its lead
    over the runner-up, the story's size) and says whether the article belongs to it at all.
    Without it the ranking probability itself is compared with the threshold."""

    model_config = ConfigDict(frozen=True, extra="allow")
    content: LogisticModel
    timed: LogisticModel
    join: LogisticModel | None = None


@lru_cache(maxsize=1)
def default_weights() -> LinkWeights:
    """The shipped weights, ``pipeline/resources/link_weights.json`` (see ``pipeline.linktrain``)."""
    text = resources.files("pipeline").joinpath("resources/link_weights.json").read_text(encoding="utf-8")
    return LinkWeights.model_validate_json(text)


#: Lemmas are left out (as good as tokens on ECB+ cross-validation, at twice the cost; their
#: document frequencies are not counted either) and so are numbers_title/numbers_body (numbers
#: sit in the body, so they duplicate numbers_all). Places and organisations (``places_*``,
#: ``groups_*``) measured no better than without on ECB+ and stay optional.
DEFAULT_SUBVECTORS: tuple[str, ...] = (
    "tokens_title",
    "tokens_body",
    "tokens_all",
    "entities_title",
    "entities_body",
    "entities_all",
    "numbers_all",
    "entities_lead",
)


def _default_subvectors() -> tuple[str, ...]:
    return DEFAULT_SUBVECTORS


class LinkerConfig(BaseModel):
    """Options of :class:`StoryLinker`. ``threshold`` is on the calibrated probability."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    horizon_days: float = Field(14.0, gt=0)
    max_candidates: int = Field(20, ge=1)
    weights: LinkWeights = Field(default_factory=default_weights)
    sigma_days: float = Field(3.0, gt=0)
    duplicate_jaccard: float = Field(0.8, gt=0.0, le=1.0)
    duplicate_share: float = Field(
        DUPLICATE_SHARE, gt=0.0, le=1.0, description="Share of aligned sentences that makes a reworded copy."
    )
    duplicate_stories: int = Field(2, ge=0, description="Most probable candidates searched for reworded copies.")
    subvectors: tuple[str, ...] = Field(default_factory=_default_subvectors)
    top_k_terms: int = Field(150, ge=10, description="Terms kept per story sub-vector.")
    index_terms: int = Field(20, ge=1, description="Top tokens_all terms of a story put in the index.")
    index_entities: int = Field(20, ge=0, description="Top entity keys of a story put in the index.")
    query_terms: int = Field(20, ge=1, description="Top terms (and entities) of an article looked up.")
    posting_scan: int = Field(64, ge=1, description="Most recent stories read per index key.")
    max_fingerprints: int = Field(16, ge=0, description="Member fingerprints kept per story.")
    max_decisions: int = Field(
        128, ge=1, description="Most recent member decisions kept per story (the idempotence window)."
    )
    max_story_df: int = Field(
        1000, ge=10, description="Distinct terms whose document frequency a story contributes."
    )
    max_df_terms: int = Field(
        500_000, ge=1000, description="Terms kept in the retired document frequencies (least frequent pruned)."
    )
    retired_fold_every: int = Field(
        128, ge=1, description="Retirement records kept as their own keys before they fold into the retired base."
    )
    retired_shard_bytes: int = Field(
        262_144, ge=4096, description="About this many bytes of document frequencies per shard of the retired base."
    )
    recent_members: int = Field(8, ge=1, description="Most recent members kept (truncated) for max-over-members.")
    member_terms: int = Field(25, ge=1, description="Terms kept per remembered member and sub-vector.")
    salient_entities: int = Field(5, ge=1, description="Top entities of a story that an article should mention.")

    @field_validator("subvectors")
    @classmethod
    def _check_subvectors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(v) - set(ALL_SUBVECTORS)
        if unknown:
            raise ValueError(f"unknown sub-vectors {sorted(unknown)}; known: {ALL_SUBVECTORS}")
        # The candidate index is built from these two.
        return tuple(dict.fromkeys((*v, "tokens_all", "entities_all")))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (
            *(f"cos_{s}" for s in self.subvectors),
            *(f"miss_{s}" for s in self.subvectors),
            *EVIDENCE_FEATURES,
            *TIME_FEATURES,
        )


def _epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # naive datetimes are read as UTC so that mixing never raises
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass
class _Doc:
    """One article's unit-length sub-vectors (terms unprefixed) and its df terms (prefixed)."""

    vectors: dict[str, dict[str, float]]
    df_terms: frozenset[str]
    fingerprint: tuple[int, ...]
    published: float | None
    years: frozenset[str] = frozenset()
    sq: dict[str, float] = field(default_factory=dict)  # Σ w² per sub-vector (1 when not empty)


@dataclass
class _Story:
    id: str
    seq: int
    tick: int
    first_article: str
    vectors: dict[str, dict[str, float]]
    norms: dict[str, float]
    df: Counter[str]
    size: int = 0
    newest: float | None = None
    oldest: float | None = None
    time_sum: float = 0.0
    n_dated: int = 0
    last_active: float | None = None
    fingerprints: list[tuple[str, bytes]] = field(default_factory=list)  # uint64 MinHash rows
    decisions: dict[str, LinkDecision] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    salient: tuple[str, ...] = ()  # top entity keys (derived from vectors, not exported)
    recent: list[dict[str, dict[str, float]]] = field(default_factory=list)  # truncated member vectors
    year_counts: Counter[str] = field(default_factory=Counter)  # years its members name, bounded

    @property
    def years(self) -> frozenset[str]:
        return frozenset(self.year_counts)


@dataclass
class _Retired:
    """What retired stories leave behind. The totals (``docs`` ... ``stories``, ``df``) are the
    base plus every pending record. The base (``base`` totals and ``df`` minus the pending
    records' df) is persisted as ``shards`` shards of ``generation``; each retirement adds a
    record (persisted once, under its own key) until ``fold_every`` of them fold into a new base.
    So no persisted part grows with the length of the stream, and a retirement writes only
    its own record."""

    docs: int = 0
    df: Counter[str] = field(default_factory=Counter)
    max_seq: int = -1
    max_tick: int = -1
    watermark: float | None = None
    stories: int = 0
    generation: int = 0
    shards: int = 0
    folded: int = 0  # records numbered below this are in the base
    next_record: int = 0
    base: dict = field(default_factory=dict)  # the totals at the last fold (what the meta key holds)
    pending: dict[str, dict] = field(default_factory=dict)  # record id -> record export, oldest first
    shard_cache: list[dict[str, int]] | None = None  # the base's shards, until each was exported once
    unsent: set[int] = field(default_factory=set)


def _shard_id(generation: int, index: int) -> str:
    return f"{RETIRED_PREFIX}g{generation}/{index}"


def _parse_part(key: str) -> tuple[str, int, int] | None:
    """("g", generation, index) for a shard key, ("r", n, 0) for a record key, else None."""
    if not key.startswith(RETIRED_PREFIX):
        return None
    rest = key[len(RETIRED_PREFIX):]
    m = re.fullmatch(r"g(\d+)/(\d+)|r(\d+)", rest)
    if m is None:
        return None
    if m.group(3) is not None:
        return ("r", int(m.group(3)), 0)
    return ("g", int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True)
class Candidate:
    """A scored candidate story (for training and inspection)."""

    story: str
    features: dict[str, float]
    probability: float
    timed: bool
    size: int = 1


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def join_features(cands: Sequence[Candidate]) -> tuple[Candidate | None, dict[str, float]]:
    """The most probable candidate and the features of the join-or-new decision about it: its
    own features, ``rank_logit`` (the ranking model's log-odds), ``rank_margin`` (its lead in
    probability over the runner-up: a near tie means the article sits between two stories) and
    ``inv_size`` (1/members: a one-article story is a noisier centroid than a large one)."""
    if not cands:
        return None, {}
    ranked = sorted(cands, key=lambda c: (-c.probability, c.story))
    best = ranked[0]
    second = ranked[1].probability if len(ranked) > 1 else 0.0
    x = dict(best.features)
    x["rank_logit"] = _logit(best.probability)
    x["rank_margin"] = best.probability - second
    x["inv_size"] = 1.0 / max(1, best.size)
    return best, x


class StoryLinker:
    """Single-pass online story linker. Not thread-safe: one linker per partition/worker."""

    def __init__(self, config: LinkerConfig | None = None) -> None:
        self.config = config or LinkerConfig()
        self._stories: dict[str, _Story] = {}
        self._article_story: dict[str, str] = {}
        self._df: Counter[str] = Counter()
        self._docs = 0
        self._next_seq = 0
        self._tick = 0
        self._watermark: float | None = None
        self._index: dict[str, dict[str, int]] = {}  # key -> {story id: seq}, oldest update first
        self._heap: list[tuple[float, int, str]] = []  # (last_active, seq, id), lazily invalidated
        self._retired = _Retired()
        self._changed: list[str] = []
        self._kinds = frozenset(sub.split("_")[0] for sub in self.config.subvectors)

    # ------------------------------------------------------------------ public API

    @property
    def live_stories(self) -> int:
        return len(self._stories)

    def link(
        self,
        article_id: str,
        features: LinkFeatures,
        published: datetime | None,
        *,
        now: datetime | None = None,
    ) -> LinkDecision:
        """Link one article.

        ``now`` is the arrival time (the worker's message time, a replay's logical clock): it alone
        moves the retirement clock, so a story lives while articles keep *arriving* for it, however
        old their ``published`` dates. ``published`` drives only the time-decay features. When the
        caller has no arrival clock (``now=None``), ``published`` stands in for it; when both are
        ``None`` the clock does not move and nothing retires."""
        self._changed = []
        sid = self._article_story.get(article_id)
        if sid is not None:
            return self._stories[sid].decisions[article_id]

        pub = _epoch(published)
        arrival = _epoch(now) if now is not None else pub
        self._advance(arrival)
        doc = self._vectorise(features, pub)
        cands = self._score(doc)

        best, p_join = self._join_probability(cands)
        dup_story, dup_article, dup_sim = self._find_duplicate(doc, cands)
        if dup_story is not None:
            p = next(c.probability for c in cands if c.story == dup_story)
            decision = LinkDecision(
                story=dup_story,
                is_new=False,
                score=max(p, dup_sim),
                duplicate_of=dup_article,
                candidates=len(cands),
            )
        elif best is not None and p_join >= self.config.threshold:
            decision = LinkDecision(story=best.story, is_new=False, score=p_join, candidates=len(cands))
        else:
            decision = LinkDecision(
                story=self._new_story_id(article_id), is_new=True, score=1.0 - p_join, candidates=len(cands)
            )
        self._commit(article_id, doc, decision, arrival)
        return decision

    def _join_probability(self, cands: Sequence[Candidate]) -> tuple[Candidate | None, float]:
        best, x = join_features(cands)
        if best is None:
            return None, 0.0
        model = self.config.weights.join
        return best, (model.probability(x) if model is not None else best.probability)

    def candidates(self, features: LinkFeatures, published: datetime | None) -> list[Candidate]:
        """Score the candidate stories of an article without changing any state."""
        return self._score(self._vectorise(features, _epoch(published)))

    def assign(
        self,
        article_id: str,
        features: LinkFeatures,
        published: datetime | None,
        story: str,
        *,
        now: datetime | None = None,
    ) -> None:
        """Put an article into ``story`` (created when unknown) whatever the scores say. Used to
        replay gold clusters when training; the online path is :meth:`link`."""
        self._changed = []
        if article_id in self._article_story:
            return
        pub = _epoch(published)
        arrival = _epoch(now) if now is not None else pub
        self._advance(arrival)
        doc = self._vectorise(features, pub)
        decision = LinkDecision(story=story, is_new=story not in self._stories, score=1.0)
        self._commit(article_id, doc, decision, arrival)

    def changed_stories(self) -> list[str]:
        """Keys whose exported state changed in the last :meth:`link` (or changed before it raised): the story joined or opened;
        stories that retired (their export is a tombstone) with the record each left
        (``__retired__/r<n>``); and, when the records folded into a new base, its shards, then
        :data:`RETIRED_KEY`, then the old shards and the folded records (tombstones). Empty after a
        replayed (already linked) article."""
        return list(self._changed)

    def export_story(self, story_id: str) -> dict:
        """JSON-able state of one key: a live story, the retired aggregate (:data:`RETIRED_KEY`)
        or one of its parts (``__retired__/...``). A retired, folded or unknown key gives a
        tombstone ``{"kind": "tombstone", "id": ...}`` that a store may delete; :meth:`restore`
        ignores it."""
        if story_id == RETIRED_KEY:
            return self.export_retired()
        part = _parse_part(story_id)
        if part is not None:
            return self._export_part(story_id, part)
        st = self._stories.get(story_id)
        if st is None:
            return {"kind": "tombstone", "id": story_id}
        return {
            "kind": "story",
            "id": st.id,
            "seq": st.seq,
            "tick": st.tick,
            "first_article": st.first_article,
            "size": st.size,
            "newest": st.newest,
            "oldest": st.oldest,
            "time_sum": st.time_sum,
            "n_dated": st.n_dated,
            "last_active": st.last_active,
            "vectors": {k: dict(v) for k, v in st.vectors.items()},
            "df": dict(st.df),
            "fingerprints": [[a, _fp_ints(fp)] for a, fp in st.fingerprints],
            "recent": [{k: dict(v) for k, v in m.items()} for m in st.recent],
            "years": dict(st.year_counts),
            "decisions": {a: d.model_dump(mode="json") for a, d in st.decisions.items()},
        }

    def export_retired(self) -> dict:
        """The retired aggregate's base as of its last fold: counters and the number of shards
        (:data:`RETIRED_PREFIX` keys) its document frequencies are in. Before the first fold
        (generation 0) there are no shards and the base's (empty or, from an older version,
        inline) frequencies are given here."""
        r = self._retired
        out = {
            "kind": "retired",
            "id": RETIRED_KEY,
            "docs": r.base.get("docs", 0),
            "max_seq": r.base.get("max_seq", -1),
            "max_tick": r.base.get("max_tick", -1),
            "watermark": r.base.get("watermark"),
            "stories": r.base.get("stories", 0),
            "generation": r.generation,
            "shards": r.shards,
            "folded": r.folded,
        }
        if r.generation == 0:
            out["df"] = self._base_df()
        return out

    def retired_totals(self) -> dict[str, int]:
        """Retired stories, their articles and the distinct terms of their document frequencies
        (the base and the records not folded yet)."""
        r = self._retired
        return {"stories": r.stories, "docs": r.docs, "terms": len(r.df), "records": len(r.pending)}

    def _base_df(self) -> dict[str, int]:
        r = self._retired
        pending: Counter[str] = Counter()
        for rec in r.pending.values():
            pending.update(rec["df"])
        return {t: c - pending[t] for t, c in r.df.items() if c > pending[t]}

    def _export_part(self, key: str, part: tuple[str, int, int]) -> dict:
        r = self._retired
        kind, a, b = part
        if kind == "r":
            rec = r.pending.get(key)
            return dict(rec) if rec is not None else {"kind": "tombstone", "id": key}
        if a != r.generation or b >= r.shards:
            return {"kind": "tombstone", "id": key}
        if r.shard_cache is None:  # built once per fold (again only if a retried batch asks again)
            shards: list[dict[str, int]] = [{} for _ in range(r.shards)]
            for t, c in self._base_df().items():
                shards[zlib.crc32(t.encode("utf-8")) % r.shards][t] = c
            r.shard_cache, r.unsent = shards, set(range(r.shards))
        out = {"kind": "retired_shard", "id": key, "generation": a, "index": b, "df": r.shard_cache[b]}
        r.unsent.discard(b)
        if not r.unsent:
            r.shard_cache = None  # every shard went out: do not hold the base twice
        return out

    def export_all(self) -> list[dict]:
        """Every live story and the retired aggregate with its parts, ready for :meth:`restore`."""
        r = self._retired
        parts = [_shard_id(r.generation, i) for i in range(r.shards)] + list(r.pending)
        return (
            [self.export_story(s) for s in self._stories]
            + [self.export_retired()]
            + [self.export_story(p) for p in parts]
        )

    @classmethod
    def restore(cls, config: LinkerConfig, stories: Iterable[Mapping]) -> StoryLinker:
        """Rebuild a linker from exported dicts (stories, the retired aggregate, tombstones in any
        order). The result decides exactly as the linker that exported them."""
        self = cls(config)
        live: list[_Story] = []
        meta: Mapping | None = None
        shards: list[Mapping] = []
        records: list[Mapping] = []
        for d in stories:
            kind = d.get("kind")
            if kind == "retired":
                meta = d
            elif kind == "retired_shard":
                shards.append(d)
            elif kind == "retired_record":
                records.append(d)
            elif kind == "story":
                vectors = {k: {t: float(w) for t, w in v.items()} for k, v in d["vectors"].items()}
                live.append(
                    _Story(
                        id=d["id"],
                        seq=int(d["seq"]),
                        tick=int(d["tick"]),
                        first_article=d["first_article"],
                        vectors=vectors,
                        norms={k: _norm(v) for k, v in vectors.items()},
                        df=Counter({k: int(v) for k, v in d["df"].items()}),
                        size=int(d["size"]),
                        newest=d["newest"],
                        oldest=d["oldest"],
                        time_sum=float(d["time_sum"]),
                        n_dated=int(d["n_dated"]),
                        last_active=d["last_active"],
                        fingerprints=[(a, _fp_bytes(fp)) for a, fp in d["fingerprints"]],
                        recent=[
                            {k: {t: float(w) for t, w in v.items()} for k, v in m.items()} for m in d.get("recent", [])
                        ],
                        year_counts=Counter({y: int(c) for y, c in d.get("years", {}).items()}),
                        decisions={a: LinkDecision.model_validate(v) for a, v in d["decisions"].items()},
                    )
                )
        self._retired = r = _restore_retired(meta, shards, records)
        self._df = Counter(r.df)
        self._docs = r.docs
        self._next_seq = r.max_seq + 1
        self._tick = r.max_tick + 1
        self._watermark = r.watermark
        # Index order is "least recently updated first": replaying updates by tick rebuilds it.
        for st in sorted(live, key=lambda s: s.tick):
            self._stories[st.id] = st
            self._df.update(st.df)
            self._docs += st.size
            self._next_seq = max(self._next_seq, st.seq + 1)
            self._tick = max(self._tick, st.tick + 1)
            if st.last_active is not None:
                self._watermark = st.last_active if self._watermark is None else max(self._watermark, st.last_active)
                heapq.heappush(self._heap, (st.last_active, st.seq, st.id))
            for a in st.decisions:
                self._article_story[a] = st.id
            self._reindex(st)
        return self

    # ------------------------------------------------------------------ internals

    def _idf(self, term: str, extra: int) -> float:
        # Smoothed, counted online; ``extra`` adds the article being scored (not yet committed).
        n = self._docs + extra
        return math.log((n + 1) / (self._df.get(term, 0) + extra + 1)) + 1.0

    def _vectorise(self, f: LinkFeatures, published: float | None) -> _Doc:
        fields = {
            "tokens": (f.title_tokens, f.body_tokens),
            "lemmas": (f.title_lemmas, f.body_lemmas),
            "entities": (f.title_entities, f.body_entities),
            "numbers": ((), f.numbers),
        }
        for kind, labels in TYPED_LABELS.items():
            if kind not in self._kinds:
                continue
            fields[kind] = (
                _typed(kind, f.title_entities, f.title_entity_labels, labels),
                _typed(kind, f.body_entities, f.body_entity_labels, labels),
            )
        df_terms: set[str] = set()
        for kind, (title, body) in fields.items():
            if kind in self._kinds:  # document frequencies only of the kinds a sub-vector uses
                df_terms.update(sys.intern(_PREFIX[kind] + t) for t in (*title, *body))
        idf = {t: self._idf(t, 1) for t in df_terms}  # the title, body and all vectors share terms
        vectors: dict[str, dict[str, float]] = {}
        for sub in self.config.subvectors:
            kind, part = sub.split("_")
            title, body = fields[kind]
            if part == "title":
                seq = title
            elif part == "body":
                seq = body
            elif part == "lead":
                seq = (*title, *body[: LEAD_ITEMS[kind]])
            else:
                seq = (*title, *body)
            pre = _PREFIX[kind]
            # Interned: the many stories that use a term share one copy of its string.
            vec = {sys.intern(t): (1.0 + math.log(c)) * idf[pre + t] for t, c in Counter(seq).items()}
            n = _norm(vec)
            vectors[sub] = {t: w / n for t, w in vec.items()} if n > 0 else {}
        years = frozenset(y for n in f.numbers for y in _YEAR.findall(n))
        return _Doc(
            vectors=vectors,
            sq={sub: sum(w * w for w in vec.values()) for sub, vec in vectors.items()},
            df_terms=frozenset(df_terms),
            # The shingle MinHash, then the sentence signature (pipeline.dedup): one stored row.
            fingerprint=(*f.fingerprint, *f.sentences) if len(f.fingerprint) == N_HASHES else tuple(f.fingerprint),
            published=published,
            years=years,
        )

    def _query_keys(self, doc: _Doc) -> dict[str, float]:
        q = self.config.query_terms
        keys: dict[str, float] = {}
        for sub, pre in (("tokens_all", "t:"), ("entities_all", "e:")):
            for t, w in _top(doc.vectors[sub], q):
                keys[pre + t] = w
        return keys

    def _story_keys(self, st: _Story) -> tuple[str, ...]:
        c = self.config
        terms = ["t:" + t for t, _ in _top(st.vectors["tokens_all"], c.index_terms)]
        ents = ["e:" + t for t, _ in _top(st.vectors["entities_all"], c.index_entities)]
        return tuple(terms + ents)

    def _candidate_ids(self, doc: _Doc) -> list[str]:
        # Postings carry each story's seq, so ranking never touches the story objects (at 100k live
        # stories, reading hundreds of them per article was what made this step grow with N).
        score: dict[str, float] = {}
        seqs: dict[str, int] = {}  # a story's seq is the same in every posting
        get = score.get
        scan = self.config.posting_scan
        for key, w in self._query_keys(doc).items():
            posting = self._index.get(key)
            if not posting:
                continue
            recent = dict(islice(reversed(posting.items()), scan))
            seqs.update(recent)
            for sid in recent:
                score[sid] = get(sid, 0.0) + w
        # The best max_candidates by (score desc, seq): only stories scoring at least the n-th best
        # score can be among them, so the key function runs on those few, not on every hit (at 100k
        # live stories an article hits about 700 stories).
        n = self.config.max_candidates
        finalists = list(score)
        if len(finalists) > n:
            floor = heapq.nlargest(n, score.values())[-1]
            finalists = [sid for sid, v in score.items() if v >= floor]
        finalists.sort(key=lambda sid: (-score[sid], seqs[sid]))
        return finalists[:n]

    def _features(self, doc: _Doc, st: _Story) -> tuple[dict[str, float], bool]:
        x: dict[str, float] = {}
        for sub, dvec in doc.vectors.items():
            n = st.norms.get(sub, 0.0)
            svec = st.vectors[sub]
            dot = miss = 0.0
            if len(dvec) <= len(svec):
                for t, w in dvec.items():
                    sw = svec.get(t)
                    if sw is None:
                        miss += w * w
                    else:
                        dot += w * sw
            else:  # the same sums, looping over the shorter side
                shared = 0.0
                for t, sw in svec.items():
                    w = dvec.get(t)
                    if w is not None:
                        dot += w * sw
                        shared += w * w
                miss = max(0.0, doc.sq[sub] - shared)
            x[f"cos_{sub}"] = dot / n if n > 0 else 0.0
            # Share of the article's weight on terms the story never used: a new name or date
            # is evidence of another event of the same kind, which cosine alone underweights.
            x[f"miss_{sub}"] = miss
        x.update(self._evidence(doc, st))
        timed = doc.published is not None and st.n_dated > 0
        if timed:
            assert doc.published is not None and st.newest is not None and st.oldest is not None
            two_s2 = 2.0 * self.config.sigma_days**2
            for name, ts in (("ts_newest", st.newest), ("ts_oldest", st.oldest), ("ts_mean", st.time_sum / st.n_dated)):
                d = (doc.published - ts) / _DAY
                x[name] = math.exp(-(d * d) / two_s2)
        return x, timed

    def _evidence(self, doc: _Doc, st: _Story) -> dict[str, float]:
        """Features that keep two events of one kind apart (two quakes on one island, two fights
        of one boxer): whether the article shares the story's main actors and places, and how
        close it is to the nearest single member rather than to the blurred centroid."""
        x: dict[str, float] = {}
        for sub in MEMBER_SUBVECTORS:
            dvec = doc.vectors.get(sub, {})
            best = total = 0.0
            n = 0
            for member in st.recent:
                mvec = member.get(sub)
                if not mvec:
                    continue
                # over the member's few terms (member_terms), not the article's hundreds
                dot = sum(w * dvec[t] for t, w in mvec.items() if t in dvec)
                best = max(best, dot)  # member vectors are stored unit-length
                total += dot
                n += 1
            x[f"max_{sub}"] = best
            # Cohesion: a report of the story resembles most of its recent members, while a
            # same-kind article that slipped in once resembles only that one.
            x[f"mean_{sub}"] = total / n if n else 0.0
        ents = doc.vectors.get("entities_all", {})
        # Share of the story's salient entities the article names at all: a report of the same
        # event nearly always names its main actor and place.
        named = sum(1 for e in st.salient if e in ents)
        x["cover_story_entities"] = named / len(st.salient) if st.salient else 0.0
        # Share of the article's own salient entities that the story knows.
        top = _top(ents, self.config.salient_entities)
        svec = st.vectors.get("entities_all", {})
        x["cover_article_entities"] = sum(1 for e, _ in top if e in svec) / len(top) if top else 0.0
        # Both name years and none agree: a 2008 fight is not the 2012 rematch.
        x["year_conflict"] = float(bool(doc.years) and bool(st.years) and not (doc.years & st.years))
        return x

    def _score(self, doc: _Doc) -> list[Candidate]:
        w = self.config.weights
        out = []
        for sid in self._candidate_ids(doc):
            st = self._stories[sid]
            x, timed = self._features(doc, st)
            p = (w.timed if timed else w.content).probability(x)
            out.append(Candidate(story=sid, features=x, probability=p, timed=timed, size=st.size))
        return out

    def _find_duplicate(self, doc: _Doc, cands: Sequence[Candidate]) -> tuple[str | None, str | None, float]:
        if not doc.fingerprint or not cands:
            return None, None, 0.0
        fp = np.asarray(doc.fingerprint[:N_HASHES], dtype=np.uint64)
        best: tuple[str | None, str | None, float] = (None, None, 0.0)
        for c in cands:
            members = self._stories[c.story].fingerprints
            same = [(a, f[: fp.nbytes]) for a, f in members if len(f) >= fp.nbytes]
            if not same:
                continue
            rows = np.frombuffer(b"".join(f for _, f in same), dtype=np.uint64).reshape(len(same), -1)
            sims = (rows == fp).mean(axis=1)
            i = int(np.argmax(sims))
            if sims[i] >= self.config.duplicate_jaccard and sims[i] > best[2]:
                best = (c.story, same[i][0], float(sims[i]))
        sentences = doc.fingerprint[N_HASHES:]
        if best[0] is None and sentences:
            # Reworded copies: sentence alignment costs more, so only the likeliest stories.
            top = sorted(cands, key=lambda x: -x.probability)[: self.config.duplicate_stories]
            for c in top:
                fps = self._stories[c.story].fingerprints
                sigs = [(a, np.frombuffer(f, dtype=np.uint64)[N_HASHES:]) for a, f in fps]
                hit = find_duplicate(sentences, sigs, self.config.duplicate_share)
                if hit is not None and hit[1] > best[2]:
                    best = (c.story, hit[0], hit[1])
        return best

    def _new_story_id(self, article_id: str) -> str:
        sid = stable_id("story", article_id)
        if sid in self._stories:  # only if an article id comes back after its story retired
            sid = stable_id("story", article_id, str(self._next_seq))
        return sid

    def _commit(self, article_id: str, doc: _Doc, decision: LinkDecision, active: float | None) -> None:
        st = self._stories.get(decision.story)
        if st is None:
            st = _Story(
                id=decision.story,
                seq=self._next_seq,
                tick=self._tick,
                first_article=article_id,
                vectors={s: {} for s in self.config.subvectors},
                norms={s: 0.0 for s in self.config.subvectors},
                df=Counter(),
            )
            self._next_seq += 1
            self._stories[st.id] = st
        k = self.config.top_k_terms
        k_m = self.config.member_terms
        for sub, dvec in doc.vectors.items():
            svec = st.vectors.setdefault(sub, {})
            for t, w in dvec.items():
                svec[t] = svec.get(t, 0.0) + w
            if len(svec) > k:
                svec = dict(sorted(svec.items(), key=lambda kv: (-kv[1], kv[0]))[:k])
                st.vectors[sub] = svec
            st.norms[sub] = _norm(svec)
        st.df.update(doc.df_terms)
        self._df.update(doc.df_terms)
        # Keep the story's commonest terms; the global counts forget the rest, so the global
        # df stays exactly "retired + live contributions" (what restore rebuilds).
        st.df = self._pruned(st.df, self.config.max_story_df)
        self._docs += 1
        st.size += 1
        st.tick = self._tick
        self._tick += 1
        if doc.published is not None:
            st.newest = doc.published if st.newest is None else max(st.newest, doc.published)
            st.oldest = doc.published if st.oldest is None else min(st.oldest, doc.published)
            st.time_sum += doc.published
            st.n_dated += 1
        if active is not None and (st.last_active is None or active > st.last_active):
            st.last_active = active
            heapq.heappush(self._heap, (active, st.seq, st.id))
        st.recent.append({sub: _unit(dict(_top(doc.vectors[sub], k_m))) for sub in MEMBER_SUBVECTORS})
        del st.recent[: -self.config.recent_members]
        if doc.years:
            st.year_counts.update(doc.years)
            if len(st.year_counts) > _MAX_YEARS:
                ranked_years = sorted(st.year_counts.items(), key=lambda kv: (-kv[1], kv[0]))
                st.year_counts = Counter(dict(ranked_years[:_MAX_YEARS]))
        if doc.fingerprint and self.config.max_fingerprints > 0:
            st.fingerprints.append((article_id, _fp_bytes(doc.fingerprint)))
            del st.fingerprints[: -self.config.max_fingerprints]
        st.decisions[article_id] = decision
        self._article_story[article_id] = st.id
        while len(st.decisions) > self.config.max_decisions:  # oldest first (insertion order)
            old = next(iter(st.decisions))
            del st.decisions[old]
            self._article_story.pop(old, None)
        self._reindex(st)
        self._changed.insert(0, st.id)

    def _reindex(self, st: _Story) -> None:
        new = self._story_keys(st)
        for key in set(st.keys) - set(new):
            posting = self._index.get(key)
            if posting is not None:
                posting.pop(st.id, None)
                if not posting:
                    del self._index[key]
        for key in new:  # move to the end: postings are ordered by last update
            posting = self._index.setdefault(key, {})
            posting.pop(st.id, None)
            posting[st.id] = st.seq
        st.keys = new
        st.salient = tuple(e for e, _ in _top(st.vectors.get("entities_all", {}), self.config.salient_entities))

    def _advance(self, t: float | None) -> None:
        """Move the clock to ``t`` (never backwards) and retire stories quiet for the horizon."""
        if t is None:
            return
        if self._watermark is None or t > self._watermark:
            self._watermark = t
        cutoff = self._watermark - self.config.horizon_days * _DAY
        while self._heap and self._heap[0][0] < cutoff:
            active, _, sid = heapq.heappop(self._heap)
            st = self._stories.get(sid)
            if st is None or st.last_active != active:
                continue  # stale heap entry: the story was updated or already retired
            self._retire(st)

    def _forget_df(self, term: str, count: int) -> None:
        left = self._df.get(term, 0) - count
        if left > 0:
            self._df[term] = left
        else:
            self._df.pop(term, None)

    def _pruned(self, df: Counter[str], cap: int) -> Counter[str]:
        """``df`` itself when it has at most ``cap`` terms; else its commonest three quarters of
        ``cap``, the rest forgotten by the global counts too."""
        if len(df) <= cap:
            return df
        keep = int(cap * 0.75)
        ranked = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
        for t, c in ranked[keep:]:
            self._forget_df(t, c)
        return Counter(dict(ranked[:keep]))

    def _retire(self, st: _Story) -> None:
        r = self._retired
        rid = f"{RETIRED_PREFIX}r{r.next_record}"
        _add_record(r, {
            "kind": "retired_record",
            "id": rid,
            "n": r.next_record,
            "docs": st.size,
            "seq": st.seq,
            "tick": st.tick,
            "watermark": st.last_active,
            "df": dict(st.df),
        })  # fmt: skip
        for key in st.keys:
            posting = self._index.get(key)
            if posting is not None:
                posting.pop(st.id, None)
                if not posting:
                    del self._index[key]
        for a in st.decisions:
            self._article_story.pop(a, None)
        del self._stories[st.id]
        self._changed += [st.id, rid]
        if len(r.pending) >= self.config.retired_fold_every:
            self._fold()

    def _fold(self) -> None:
        """Fold the pending records into a new base: new shards, the meta key, and tombstones for
        the old shards and the folded records (listed in that order in :meth:`changed_stories`)."""
        r = self._retired
        # The retired vocabulary grows with everything ever seen: drop its rarest terms (mostly
        # df 1: names and typos of stories long gone). Their IDF becomes the maximum, which is what
        # an unseen term gets anyway.
        r.df = self._pruned(r.df, self.config.max_df_terms)
        old = [_shard_id(r.generation, i) for i in range(r.shards)]
        folded = list(r.pending)
        size = sum(len(t) + 12 for t in r.df)  # about its JSON: '"term":count,'
        r.generation += 1
        r.shards = -(-size // self.config.retired_shard_bytes)
        r.folded = r.next_record
        r.pending = {}
        r.shard_cache, r.unsent = None, set()
        r.base = _totals(r)
        self._changed += [_shard_id(r.generation, i) for i in range(r.shards)] + [RETIRED_KEY] + old + folded


def _restore_retired(meta: Mapping | None, shards: Sequence[Mapping], records: Sequence[Mapping]) -> _Retired:
    """The retired aggregate from its meta key, the shards of its generation and the records not
    folded yet. Shards of another generation and records already folded are ignored: they are
    left over from a fold that a crash interrupted, or not deleted yet."""
    r = _Retired()
    if meta is not None:
        r.generation = int(meta.get("generation", 0))
        r.shards = int(meta.get("shards", 0))
        r.folded = r.next_record = int(meta.get("folded", 0))
        r.docs = int(meta["docs"])
        r.max_seq = int(meta["max_seq"])
        r.max_tick = int(meta["max_tick"])
        r.watermark = meta["watermark"]
        r.stories = int(meta.get("stories", 0))
        r.df = Counter({k: int(v) for k, v in meta.get("df", {}).items()})  # generation 0 (or an older version)
    r.base = _totals(r)
    for sh in shards:
        if int(sh["generation"]) == r.generation and int(sh["index"]) < r.shards:
            r.df.update({k: int(v) for k, v in sh["df"].items()})
    for rec in sorted(records, key=lambda d: int(d["n"])):
        if int(rec["n"]) >= r.folded:
            _add_record(r, {**rec, "n": int(rec["n"]), "df": {k: int(v) for k, v in rec["df"].items()}})
    return r


def _totals(r: _Retired) -> dict:
    """The counters of the retired aggregate, as its meta key holds them."""
    return {"docs": r.docs, "max_seq": r.max_seq, "max_tick": r.max_tick, "watermark": r.watermark, "stories": r.stories}


def _add_record(r: _Retired, rec: dict) -> None:
    """Count one retired story's record into the totals and keep it pending (until a fold)."""
    r.pending[rec["id"]] = rec
    r.next_record = max(r.next_record, rec["n"] + 1)
    r.docs += int(rec["docs"])
    r.df.update(rec["df"])
    r.max_seq = max(r.max_seq, int(rec["seq"]))
    r.max_tick = max(r.max_tick, int(rec["tick"]))
    if rec["watermark"] is not None:
        r.watermark = rec["watermark"] if r.watermark is None else max(r.watermark, rec["watermark"])
    r.stories += 1


def _typed(kind: str, keys: Sequence[str], labels: Sequence[str], wanted: frozenset[str]) -> tuple[str, ...]:
    """The entity keys of one kind; a person is keyed by surname ("wladimir klitschko" and
    "klitschko" are one actor)."""
    if len(labels) != len(keys):
        return ()
    out = []
    for k, lab in zip(keys, labels, strict=True):
        if lab in wanted:
            out.append(k.split()[-1] if kind == "people" and k.split() else k)
    return tuple(out)


def _norm(vec: Mapping[str, float]) -> float:
    return math.sqrt(sum(w * w for w in vec.values()))


def _fp_bytes(fp: Sequence[int]) -> bytes:
    # 8 bytes per MinHash slot instead of a tuple of Python ints (about 36 bytes each).
    return np.asarray(fp, dtype=np.uint64).tobytes()


def _fp_ints(fp: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(fp, dtype=np.uint64)]


def _unit(vec: dict[str, float]) -> dict[str, float]:
    n = _norm(vec)
    return {t: w / n for t, w in vec.items()} if n > 0 else {}


def _top(vec: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    return heapq.nsmallest(n, vec.items(), key=lambda kv: (-kv[1], kv[0]))


def load_weights(path: str) -> LinkWeights:
    with open(path, encoding="utf-8") as fh:
        return LinkWeights.model_validate(json.load(fh))


__all__ = [
    "ALL_SUBVECTORS",
    "DEFAULT_SUBVECTORS",
    "RETIRED_KEY",
    "RETIRED_PREFIX",
    "TIME_FEATURES",
    "Candidate",
    "LinkWeights",
    "LinkerConfig",
    "LogisticModel",
    "StoryLinker",
    "default_weights",
    "load_weights",
]
