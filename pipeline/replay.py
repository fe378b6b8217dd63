"""Run the worker's stage code in one process, with no broker and no search server.

Deterministic: the same input file gives byte-identical output files. Time inside the stages is a
logical clock (the article's ``published`` when known, else a counter), never the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .analyse import Analyser
from .article import BadArticle, dead_letter, parse_article
from .link import StoryLinker
from .sources import Record
from .storystate import StoryRecord, apply
from .types import AnalysedArticle, Article, Contradiction, DeadLetter, LinkedArticle

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass
class ReplayResult:
    assignments: list[tuple[str, str]] = field(default_factory=list)  # (article id, story id), input order
    linked: list[LinkedArticle] = field(default_factory=list)
    stories: dict[str, StoryRecord] = field(default_factory=dict)
    dead_letters: list[tuple[str, DeadLetter]] = field(default_factory=list)  # (origin, record)

    @property
    def contradictions(self) -> list[Contradiction]:
        return [c for s in self.stories.values() for c in s.contradictions]


def _batches(items: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(
    records: Iterable[Record],
    analyser: Analyser,
    linker: StoryLinker,
    *,
    max_text_bytes: int = 150_000,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    stories: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Parse, analyse, link and compare every record, in input order.

    ``stories`` (article id -> story id), when given, overrides the linker's story for the articles
    it names: claims and contradictions are then computed on a fixed (gold) grouping, so linking
    errors do not blur their evaluation. The linker still runs, so its near-duplicate detection
    (``duplicate_of``) is kept."""
    result = ReplayResult()
    n = 0
    clock: datetime | None = None  # the stream's logical time: the latest ``published`` seen so far
    for batch in _batches(records, batch_size):
        good: list[Article] = []
        for rec in batch:
            try:
                if rec.error is not None:
                    raise rec.error
                good.append(parse_article(rec.raw, max_text_bytes=max_text_bytes))
            except BadArticle as err:
                result.dead_letters.append((rec.origin, dead_letter(rec.raw, err, stage="parse")))
        analysed: Sequence[AnalysedArticle] = analyser.analyse(good)
        for a in analysed:
            pub = a.article.published
            if pub is not None and (clock is None or pub > clock):
                clock = pub
            seen = pub or clock or (EPOCH + timedelta(seconds=n))
            n += 1
            decision = linker.link(a.article.id, a.features, pub, now=clock)
            if stories is not None and a.article.id in stories:
                decision = decision.model_copy(update={"story": stories[a.article.id]})
            linked = LinkedArticle(analysed=a, link=decision)
            record, _events = apply(result.stories.get(decision.story), linked, seen)
            result.stories[decision.story] = record
            result.assignments.append((a.article.id, decision.story))
            result.linked.append(linked)
        if progress:
            progress(len(batch))
    return result


def _side(s) -> dict:
    return {
        "value": s.value,
        "articles": list(s.articles),
        "outlets": list(s.outlets),
        "attributed_to": list(s.attributed_to),
        "quote": s.quotes[0] if s.quotes else None,
        "quotes": list(s.quotes),
        "reports": [r.model_dump(mode="json") for r in s.reports],
    }


def write_outputs(result: ReplayResult, out: Path) -> dict[str, Path]:
    """Write assignments.jsonl, claims.jsonl, contradictions.jsonl, stories.jsonl and
    dead-letters.jsonl into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.jsonl" for name in ("assignments", "claims", "contradictions", "stories", "dead-letters")}

    def dump(path: Path, rows: Iterable[dict]) -> None:
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")

    dump(
        paths["assignments"],
        (
            {"id": la.analysed.article.id, "story": la.link.story}
            | ({"duplicate_of": la.link.duplicate_of} if la.link.duplicate_of else {})
            for la in result.linked
        ),
    )
    dump(
        paths["claims"],
        (
            c.model_copy(update={"story": la.link.story}).model_dump(mode="json")
            for la in result.linked
            for c in la.analysed.claims
        ),
    )
    dump(
        paths["contradictions"],
        (
            {
                "id": c.id,
                "story": c.story,
                "kind": c.kind,
                "about": c.about,
                "internal": c.internal,
                "confidence": c.confidence,
                "sides": [_side(s) for s in c.sides],
            }
            for c in result.contradictions
        ),
    )
    dump(paths["stories"], (r.story().model_dump(mode="json") for r in result.stories.values()))
    dump(paths["dead-letters"], ({"origin": o, **d.model_dump(mode="json")} for o, d in result.dead_letters))
    return paths
