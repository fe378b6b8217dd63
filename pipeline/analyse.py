"""Stages 1, 2 and 4 for a batch of articles: normalise, spaCy (entities), claims.

Claims are extracted here, in the same process as the spaCy parse, because a ``Doc`` never goes on a
topic; the story id is attached to them after linking (stage 3). The batch goes through
``nlp.pipe`` in one call, which is where almost all of a worker's time is spent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from spacy.language import Language

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

        out: list[AnalysedArticle] = []
        t2 = time.perf_counter()
        for i, (a, title, body, language) in enumerate(prepared):
            text = title + "\n\n" + body
            doc = docs.get(i)
            if doc is None:
                read = {
                    "features": _plain_features(title, body),
                    "skipped": (f"nlp:language={language}", f"claims:language={language}"),
                }
            else:
                read = {
                    "entities": extract_entities(doc),
                    "features": link_features(doc, len(title)),
                    "claims": extract_claims(doc, a.id, a.source, text=text),
                }
            out.append(
                AnalysedArticle(
                    article=a, clean_text=text, title=title, language=language, words=len(_WORD.findall(text)), **read
                )
            )
        self._observe("claims", t2, len(prepared), len(english))
        return out
