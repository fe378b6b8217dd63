"""Clustering metrics for story linking and a replay of a labelled JSONL file through the linker.

Metrics take two mappings article id → cluster id (prediction, gold) over the same articles;
articles present in only one are ignored. BCubed weights every article equally (Bagga & Baldwin
1998); pairwise counts article pairs (Miranda et al. 2018 report it).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.features import link_features
from pipeline.link import LinkerConfig, StoryLinker
from pipeline.types import LinkDecision, LinkFeatures


def _common(pred: Mapping[str, str], gold: Mapping[str, str]) -> list[str]:
    return [a for a in gold if a in pred]


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def bcubed(pred: Mapping[str, str], gold: Mapping[str, str]) -> tuple[float, float, float]:
    """BCubed (precision, recall, F1). Empty input gives (1, 1, 1): nothing was got wrong."""
    items = _common(pred, gold)
    if not items:
        return 1.0, 1.0, 1.0
    pair = Counter((pred[a], gold[a]) for a in items)
    psize = Counter(pred[a] for a in items)
    gsize = Counter(gold[a] for a in items)
    # Every item of the cell (p, g) has |p ∩ g| = pair[p, g] correct companions (itself included).
    p = sum(n * n / psize[pc] for (pc, _), n in pair.items()) / len(items)
    r = sum(n * n / gsize[gc] for (_, gc), n in pair.items()) / len(items)
    return p, r, _f1(p, r)


def pairwise(pred: Mapping[str, str], gold: Mapping[str, str]) -> tuple[float, float, float]:
    """Pairwise (precision, recall, F1) over unordered article pairs. A side with no pairs
    counts as perfect on that side (precision 1 when nothing was put together)."""
    items = _common(pred, gold)

    def pairs(counts: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in counts)

    tp = pairs(Counter((pred[a], gold[a]) for a in items).values())
    pp = pairs(Counter(pred[a] for a in items).values())
    gp = pairs(Counter(gold[a] for a in items).values())
    p = tp / pp if pp else 1.0
    r = tp / gp if gp else 1.0
    return p, r, _f1(p, r)


@dataclass(frozen=True)
class Error:
    """A merge (``cluster`` is a predicted story mixing gold stories) or a split (``cluster`` is a
    gold story spread over predicted stories). ``parts`` maps each part to its article ids."""

    kind: str
    cluster: str
    size: int
    parts: dict[str, tuple[str, ...]]
    titles: dict[str, str]

    def describe(self) -> str:
        lines = [f"{self.kind} {self.cluster} ({self.size} articles)"]
        for part, arts in self.parts.items():
            lines.append(f"  {part}: {len(arts)} e.g. {self.titles.get(arts[0], '')[:90]!r}")
        return "\n".join(lines)


def worst(
    pred: Mapping[str, str], gold: Mapping[str, str], titles: Mapping[str, str], n: int = 5
) -> tuple[list[Error], list[Error]]:
    """The ``n`` worst merges and the ``n`` worst splits, worst first. An error's badness is the
    number of article pairs it gets wrong; ties are broken by cluster id."""
    items = _common(pred, gold)

    def errors(kind: str, outer: Mapping[str, str], inner: Mapping[str, str]) -> list[Error]:
        groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for a in items:
            groups[outer[a]][inner[a]].append(a)
        out = []
        for cid, parts in groups.items():
            if len(parts) < 2:
                continue
            sizes = [len(v) for v in parts.values()]
            total = sum(sizes)
            wrong = (total * total - sum(s * s for s in sizes)) // 2
            ordered = dict(sorted(((k, tuple(v)) for k, v in parts.items()), key=lambda kv: (-len(kv[1]), kv[0])))
            out.append(
                (wrong, Error(kind, cid, total, ordered, {a: titles.get(a, "") for a in sum(map(list, ordered.values()), [])}))
            )
        out.sort(key=lambda we: (-we[0], we[1].cluster))
        return [e for _, e in out[:n]]

    return errors("merge", pred, gold), errors("split", gold, pred)


@dataclass(frozen=True)
class WrongJoin:
    """A join that put an article into a story holding none of its gold story's articles yet:
    the decision where a merge began (the articles that follow it into the story are not listed)."""

    article: str
    title: str
    gold: str
    story: str
    joined: str  # the gold story most of the joined story's articles had at that moment
    size: int  # articles in the joined story at that moment
    score: float  # the linker's probability for the join
    first: bool  # the article was the first of its gold story: a new event read as a known one
    duplicate: bool  # joined as a near-duplicate of one of the story's articles

    def describe(self) -> str:
        how = "first of its story" if self.first else "its story already open elsewhere"
        dup = ", as a near-duplicate" if self.duplicate else ""
        return (
            f"  p={self.score:.2f} {self.title[:70]!r} ({self.gold}, {how}) joined a story of {self.size} "
            f"article(s) of {self.joined}{dup}"
        )


def merge_origins(
    stream: Iterable[tuple[str, LinkDecision]], gold: Mapping[str, str], titles: Mapping[str, str] | None = None
) -> list[WrongJoin]:
    """The joins where merges began, in stream order: ``stream`` is each article id with its
    decision, in the order linked. Articles without a gold story are skipped (they still count as
    members of their story). On a file where every merge began with the first article of a new
    event, opening those few stories is all it takes to undo the merges."""
    members: dict[str, Counter[str | None]] = defaultdict(Counter)
    seen: set[str] = set()
    out = []
    for aid, d in stream:
        g = gold.get(aid)
        here = members[d.story]
        if g is not None and not d.is_new and here and here[g] == 0:
            joined, _ = max(((k, v) for k, v in here.items() if k is not None), key=lambda kv: (kv[1], kv[0]), default=("?", 0))
            out.append(
                WrongJoin(
                    article=aid,
                    title=(titles or {}).get(aid, ""),
                    gold=g,
                    story=d.story,
                    joined=joined,
                    size=sum(here.values()),
                    score=d.score,
                    first=g not in seen,
                    duplicate=d.duplicate_of is not None,
                )
            )
        here[g] += 1
        if g is not None:
            seen.add(g)
    return out


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    text: str
    story: str | None
    published: datetime | None


def read_rows(path: str | Path) -> list[Row]:
    """Read a labelled JSONL file: ``id``, ``title`` (may be empty), ``text``, optional ``story``
    and ``published`` (ISO 8601)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            pub = d.get("published")
            rows.append(
                Row(
                    id=str(d["id"]),
                    title=d.get("title") or "",
                    text=d.get("text") or "",
                    story=d.get("story"),
                    published=datetime.fromisoformat(pub) if pub else None,
                )
            )
    return rows


def build_features(rows: list[Row], nlp: Any, cache: Path | None = None) -> list[LinkFeatures]:
    """Features for every row with one ``nlp.pipe`` pass. With ``cache`` (a JSONL path owned by
    the caller, who invalidates it), features are read from it when it holds every row id."""
    if cache is not None and cache.exists():
        cached: dict[str, LinkFeatures] = {}
        with open(cache, encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                cached[d["id"]] = LinkFeatures.model_validate(d["features"])
        if all(r.id in cached for r in rows):
            return [cached[r.id] for r in rows]
    texts = (f"{r.title}\n\n{r.text}" for r in rows)
    feats = [link_features(doc, len(r.title)) for r, doc in zip(rows, nlp.pipe(texts, batch_size=32), strict=True)]
    if cache is not None:
        with open(cache, "w", encoding="utf-8") as fh:
            for r, f in zip(rows, feats, strict=True):
                fh.write(json.dumps({"id": r.id, "features": f.model_dump(mode="json")}) + "\n")
    return feats


def replay(rows: Iterable[Row], feats: Iterable[LinkFeatures], config: LinkerConfig) -> Iterator[tuple[Row, LinkDecision]]:
    """Link rows in the given order with a fresh linker."""
    linker = StoryLinker(config)
    for r, f in zip(rows, feats, strict=True):
        yield r, linker.link(r.id, f, r.published)


def load_pipeline_nlp() -> Any:
    """The worker's spaCy pipeline, as configured (model and alias table)."""
    from pipeline.aliases import AliasTable
    from pipeline.nlp import load_nlp
    from pipeline.settings import get_settings

    s = get_settings()
    return load_nlp(s.spacy_model, AliasTable.load(s.aliases_file))


def score(rows: list[Row], decisions: list[LinkDecision]) -> dict[str, Any]:
    pred = {r.id: d.story for r, d in zip(rows, decisions, strict=True)}
    gold = {r.id: r.story for r in rows if r.story is not None}
    bp, br, bf = bcubed(pred, gold)
    pp, pr, pf = pairwise(pred, gold)
    return {
        "articles": len(rows),
        "gold_stories": len(set(gold.values())),
        "pred_stories": len(set(pred.values())),
        "bcubed": {"p": bp, "r": br, "f1": bf},
        "pairwise": {"p": pp, "r": pr, "f1": pf},
        "duplicates": sum(1 for d in decisions if d.duplicate_of),
    }


def evaluate_file(
    path: str | Path, nlp: Any = None, config: LinkerConfig | None = None, *, cache: Path | None = None
) -> dict[str, Any]:
    """Parse a labelled JSONL file, link it in file order and return BCubed and pairwise scores,
    the number of stories and the linking time alone (``ms_per_article``)."""
    rows = read_rows(path)
    feats = build_features(rows, nlp if nlp is not None else load_pipeline_nlp(), cache)
    config = config or LinkerConfig()
    t0 = time.perf_counter()
    decisions = [d for _, d in replay(rows, feats, config)]
    elapsed = time.perf_counter() - t0
    result = score(rows, decisions)
    result["ms_per_article"] = 1000.0 * elapsed / max(1, len(rows))
    return result


def shuffled_orders(dated: Sequence[bool], n: int, seed: int = 20180601) -> list[list[int]]:
    """``n`` orders of the positions ``0 .. len(dated)-1``, each a seeded shuffle of the undated
    positions among themselves: a dated article keeps its place (the stream's time order is not
    an arbitrary order, and the linker's clock reads it), an undated one goes anywhere an undated
    one was."""
    rng = random.Random(seed)
    free = [i for i, d in enumerate(dated) if not d]
    out = []
    for _ in range(n):
        moved = free[:]
        rng.shuffle(moved)
        order = list(range(len(dated)))
        for slot, i in zip(free, moved, strict=True):
            order[slot] = i
        out.append(order)
    return out


#: ``--dates`` of ``crosswire eval-links``: publication dates simulated on an undated file.
SYNTHETIC_DATES = ("same", "spread")


def synthetic_dates(
    stories: Sequence[str], kind: str, seed: int, *, window_days: float = 30.0, spread_days: float = 2.0
) -> tuple[list[int], list[datetime]]:
    """An order and publication dates for the articles of an undated labelled file (``stories``:
    each article's gold story), to see what the linker's time-decay model does when dates exist.

    - ``same``: every article on one day, in a seeded shuffled order. Time says nothing here, as on
      a busy day of a real stream, so the dates should neither join nor split anything.
    - ``spread``: each gold story starts on a seeded day of a ``window_days`` window and its articles
      follow within ``spread_days``; the stream is in date order. Time says a lot here."""
    if kind not in SYNTHETIC_DATES:
        raise ValueError(f"unknown dates {kind!r}; known: {', '.join(SYNTHETIC_DATES)}")
    rng = random.Random(seed)
    day0 = datetime(2020, 1, 1, tzinfo=UTC)
    if kind == "same":
        order = list(range(len(stories)))
        rng.shuffle(order)
        return order, [day0] * len(stories)
    start = {s: rng.uniform(0.0, window_days) for s in sorted(set(stories))}
    dates = [day0 + timedelta(days=start[s] + rng.uniform(0.0, spread_days)) for s in stories]
    return sorted(range(len(stories)), key=lambda i: dates[i]), dates


def order_scores(
    items: Sequence[tuple[str, LinkFeatures, datetime | None]],
    gold: Mapping[str, str],
    make_linker: Callable[[], StoryLinker],
    orders: Iterable[Sequence[int]],
    progress: Callable[[int], None] | None = None,
) -> list[tuple[float, float, float]]:
    """BCubed (P, R, F1) of linking ``items`` (article id, features, published) in each order, a
    fresh linker each time, with the replay's clock (the latest ``published`` so far)."""
    out = []
    for order in orders:
        linker = make_linker()
        clock: datetime | None = None
        pred = {}
        for i in order:
            aid, f, pub = items[i]
            if pub is not None and (clock is None or pub > clock):
                clock = pub
            pred[aid] = linker.link(aid, f, pub, now=clock).story
        out.append(bcubed(pred, gold))
        if progress is not None:
            progress(1)
    return out


__all__ = [
    "Error",
    "Row",
    "bcubed",
    "build_features",
    "evaluate_file",
    "load_pipeline_nlp",
    "merge_origins",
    "order_scores",
    "pairwise",
    "read_rows",
    "replay",
    "score",
    "shuffled_orders",
    "synthetic_dates",
    "worst",
    "WrongJoin",
]
