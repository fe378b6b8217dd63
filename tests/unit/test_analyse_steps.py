"""The Analyser's two steps (spaCy, then the rest) and the one-by-one fallback the worker uses."""

from __future__ import annotations

import pytest

from pipeline.analyse import Analyser
from pipeline.app import analyse_one_by_one
from pipeline.types import Article


@pytest.fixture(scope="module")
def articles(seed_texts: dict[str, str]) -> list[Article]:
    arts = [Article(id=name, text=text, source=f"outlet-{i}") for i, (name, text) in enumerate(sorted(seed_texts.items()))]
    return [*arts, Article(id="fr", text="Le gouvernement a annoncé hier une nouvelle loi sur les retraites.", language="fr")]


def test_the_two_steps_give_what_analyse_gives(nlp, articles: list[Article]) -> None:
    analyser = Analyser(nlp)
    parsed = analyser.parse(articles)
    assert len(parsed) == len(articles) and set(parsed.docs) == set(range(len(articles) - 1))  # not the French one
    two_steps = analyser.finish(parsed)
    assert [a.model_dump() for a in two_steps] == [a.model_dump() for a in analyser.analyse(articles)]
    assert any(a.claims for a in two_steps)
    assert two_steps[-1].skipped and not two_steps[-1].claims


def test_one_by_one_finds_the_article_that_breaks_a_batch(nlp, articles: list[Article]) -> None:
    analyser = Analyser(nlp)
    bad = articles[2]

    def analyse(batch: list[Article]):
        if any(a.id == bad.id for a in batch):
            raise ValueError("boom")
        return analyser.analyse(batch)

    with pytest.raises(ValueError):
        analyse(articles)
    results, failed = analyse_one_by_one(analyse, articles)
    assert [a.article.id for a in results] == [a.id for a in articles if a.id != bad.id]
    assert [(a.id, str(e)) for a, e in failed] == [(bad.id, "boom")]
