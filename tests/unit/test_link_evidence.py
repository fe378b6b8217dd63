"""Typed actor vectors, the cohesion features, the optional join model and URL titles."""

from __future__ import annotations

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st

from pipeline.features import is_url, link_features, url_words
from pipeline.link import (
    JOIN_FEATURES,
    Candidate,
    LinkerConfig,
    LinkWeights,
    LogisticModel,
    StoryLinker,
    join_features,
)
from pipeline.types import LinkFeatures


def _art(people: tuple[str, ...], words: tuple[str, ...]) -> LinkFeatures:
    return LinkFeatures(
        title_tokens=words[:4],
        body_tokens=words,
        title_lemmas=words[:4],
        body_lemmas=words,
        title_entities=people[:1],
        body_entities=people,
        title_entity_labels=("PERSON",) * len(people[:1]),
        body_entity_labels=("PERSON",) * len(people),
    )


def test_people_are_keyed_by_surname_and_scored() -> None:
    linker = StoryLinker(LinkerConfig(subvectors=("tokens_all", "people_all")))
    words = ("heavyweight", "title", "fight", "round", "knockout", "belts")
    linker.link("a", _art(("wladimir klitschko", "hasim rahman"), words), None)
    same = linker.candidates(_art(("klitschko", "rahman"), words), None)
    other = linker.candidates(_art(("klitschko", "tony thompson"), words), None)
    assert same[0].features["cos_people_all"] > other[0].features["cos_people_all"] > 0.0
    assert same[0].features["cos_people_all"] == pytest.approx(1.0)


def test_unlabelled_entities_give_no_typed_vector() -> None:
    linker = StoryLinker(LinkerConfig(subvectors=("tokens_all", "people_all")))
    f = _art(("a b",), ("x", "y", "z")).model_copy(update={"body_entity_labels": ()})
    linker.link("a", f, None)
    (state,) = [s for s in linker.export_all() if s["kind"] == "story"]
    assert set(state["vectors"]["people_all"]) == {"b"}  # only the labelled title mention


def test_document_frequencies_only_for_used_kinds() -> None:
    linker = StoryLinker(LinkerConfig(subvectors=("tokens_all",)))
    linker.link("a", _art(("x y",), ("alpha", "beta")), None)
    (state,) = [s for s in linker.export_all() if s["kind"] == "story"]
    assert state["df"] and all(k[:2] in {"t:", "e:"} for k in state["df"])  # no lemma or person df


def test_cohesion_is_mean_over_recent_members() -> None:
    linker = StoryLinker(LinkerConfig())
    a = ("quake", "island", "magnitude", "injured", "villages", "tremor")
    b = ("election", "parliament", "turnout", "vote", "candidates", "commission")
    linker.assign("1", _art((), a), None, "s")
    linker.assign("2", _art((), b), None, "s")
    (c,) = linker.candidates(_art((), a), None)
    assert c.features["max_tokens_all"] == pytest.approx(1.0)
    assert c.features["mean_tokens_all"] == pytest.approx(0.5)


def _cand(story: str, p: float, size: int = 1) -> Candidate:
    return Candidate(story=story, features={"cos_tokens_all": p}, probability=p, timed=False, size=size)


def test_join_features_pick_the_best_and_measure_the_margin() -> None:
    best, x = join_features([_cand("b", 0.4), _cand("a", 0.9, size=4)])
    assert best is not None and best.story == "a"
    assert set(JOIN_FEATURES) <= set(x)
    assert x["rank_margin"] == pytest.approx(0.5) and x["inv_size"] == pytest.approx(0.25)
    assert join_features([]) == (None, {})


def test_join_model_overrides_the_ranking_probability() -> None:
    words = ("quake", "island", "magnitude", "injured", "villages", "tremor")
    plain = LinkWeights(content=LogisticModel(bias=5.0), timed=LogisticModel(bias=5.0))
    never = plain.model_copy(update={"join": LogisticModel(bias=-5.0)})
    for weights, joins in ((plain, True), (never, False)):
        linker = StoryLinker(LinkerConfig(weights=weights))
        linker.link("1", _art((), words), None)
        assert linker.link("2", _art((), words), None).is_new is not joins


def test_url_titles() -> None:
    assert is_url("http: / / www. example. com / 2012 / 7 / 7 / klitschko - vs - thompson. html")
    assert is_url("www.example.org/a")
    assert not is_url("Klitschko stops Thompson in six rounds")
    words, years = url_words("http: / / www. example. com / 2012 / 7 / 7 / 31437 / klitschko - vs - thompson - ii. html")
    assert words == ["klitschko", "vs", "thompson", "ii"] and years == ["2012"]


@given(st.text(max_size=40))
def test_is_url_never_raises(text: str) -> None:
    assert isinstance(is_url(text), bool)


def test_url_title_gives_slug_words_not_host_tokens() -> None:
    nlp = spacy.blank("en")
    title = "http: / / www. example. com / 2009 / 04 / obama - reverses - rule. html"
    doc = nlp(f"{title}\n\nThe president reversed the rule on Tuesday.")
    f = link_features(doc, len(title))
    assert f.title_tokens == ("obama", "reverses", "rule")
    assert "2009" in f.numbers
    assert "http" not in f.body_tokens and "president" in f.body_tokens
