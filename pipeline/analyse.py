"""Stages 1, 2 and 4 for a batch of articles: normalise, spaCy (entities), claims.

Claims are extracted here, in the same process as the spaCy parse, because a ``Doc`` never goes on a
topic; the story id is attached to them after linking (stage 3). The batch goes through
``nlp.pipe`` in one call, which is where almost all of a worker's time is spent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from spacy.language import Language
from spacy.tokens import Doc

from .claims import extract_claims
from .features import link_features
from .metrics import Metrics
from .nlp import extract_entities
from .normalise import normalise, split_title
from .types import AnalysedArticle, Article, LinkFeatures

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# The commonest English function words: an article without a few percent of them is not English.
_EN_FUNCTION_WORDS = frozenset(
    "the of and to in a is that for it was on with as by at from be this are have has were said not but "
    "or an which they he she his her their its after been who will would had".split()
)


def guess_language(text: str) -> str:
    """``"en"`` when the text reads as English, else ``"und"`` (undetermined). Cheap and conservative:
    only the share of common English function words is used, so a stated ``language`` wins."""
    words = _WORD.findall(text[:20_000].lower())
    if len(words) < 5:
        return "en" if words else "und"
    share = sum(w in _EN_FUNCTION_WORDS for w in words) / len(words)
    return "en" if share >= 0.12 else "und"


def _plain_features(title: str, body: str) -> LinkFeatures:
    """Link features without spaCy, for articles the English pipeline must not read."""
    return LinkFeatures(
        title_tokens=tuple(w.lower() for w in _WORD.findall(title)),
        body_tokens=tuple(w.lower() for w in _WORD.findall(body)),
    )


@dataclass
class Parsed:
    """A batch between the two steps of :class:`Analyser`: each article with its title, body and
    language, and the spaCy ``Doc`` of each English one (by position)."""

    prepared: list[tuple[Article, str, str, str]]
    docs: dict[int, Doc] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prepared)


class Analyser:
    """Turns articles into :class:`AnalysedArticle` records. Holds the spaCy pipeline (load it once
    per process and pass it in). ``analyse`` is deterministic for a given pipeline."""

    def __init__(self, nlp: Language, *, metrics: Metrics | None = None, batch_size: int = 32) -> None:
        self.nlp = nlp
        self.metrics = metrics
        self.batch_size = batch_size

    def _observe(self, stage: str, started: float, n_in: int, n_ok: int) -> None:
        if self.metrics is not None:
            self.metrics.stage_seconds.labels(stage).observe(time.perf_counter() - started)
            self.metrics.articles.labels(stage, "in").inc(n_in)
            self.metrics.articles.labels(stage, "ok").inc(n_ok)
            if n_in > n_ok:
                self.metrics.articles.labels(stage, "skipped").inc(n_in - n_ok)

    def analyse(self, articles: Sequence[Article]) -> list[AnalysedArticle]:
        """Both steps at once: :meth:`parse`, then :meth:`finish`."""
        return self.finish(self.parse(articles))

    def parse(self, articles: Sequence[Article]) -> Parsed:
        """Step 1: normalise and run spaCy over the batch (``nlp.pipe``, one call). The worker runs
        it on its spaCy thread while the previous batch goes through :meth:`finish` on another:
        spaCy's matrix products release the GIL, and the claims of one batch fill that time."""
        t0 = time.perf_counter()
        prepared = []
        for a in articles:
            clean = normalise(a.text)
            title, body = split_title(clean, a.title)
            # "en-GB" -> "en": the primary subtag decides whether the English pipeline reads it
            language = (a.language or guess_language(body)).lower().replace("_", "-").split("-")[0] or "und"
            prepared.append((a, title, body, language))
        self._observe("normalise", t0, len(articles), len(articles))

        english = [i for i, p in enumerate(prepared) if p[3] == "en"]
        t1 = time.perf_counter()
        docs = dict(
            zip(
                english,
                self.nlp.pipe((prepared[i][1] + "\n\n" + prepared[i][2] for i in english), batch_size=self.batch_size),
            )
        )
        self._observe("nlp", t1, len(prepared), len(english))
        return Parsed(prepared, docs)

    def finish(self, parsed: Parsed) -> list[AnalysedArticle]:
        """Step 2: entities, link features and claims from the parsed documents."""
        out: list[AnalysedArticle] = []
        t2 = time.perf_counter()
        for i, (a, title, body, language) in enumerate(parsed.prepared):
            text = title + "\n\n" + body
            doc = parsed.docs.get(i)
            if doc is None:
                read = {
                    "features": _plain_features(title, body),
                    "skipped": (f"nlp:language={language}", f"claims:language={language}"),
                }
            else:
                read = {
                    "entities": extract_entities(doc),
                    "features": link_features(doc, len(title)),
                    "claims": extract_claims(doc, a.id, a.source),
                }
            out.append(
                AnalysedArticle(
                    article=a, clean_text=text, title=title, language=language, words=len(_WORD.findall(text)), **read
                )
            )
        self._observe("claims", t2, len(parsed.prepared), len(parsed.docs))
        return out
