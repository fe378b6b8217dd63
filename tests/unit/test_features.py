from __future__ import annotations

import os
import subprocess
import sys

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import Doc, Span

from pipeline.features import N_HASHES, fingerprint, jaccard_estimate, link_features, normalise_number

TITLE = "Militia leaders detained in Baghdad raid"
BODY = "Iraqi forces detained 14 members of Kataib Hezbollah on June 25, two officials said."


@pytest.fixture(scope="module")
def blank() -> spacy.Language:
    return spacy.blank("en")  # tokenizer, stop words and lexical attributes; no model download


def _doc(blank: spacy.Language) -> tuple[Doc, int]:
    text = f"{TITLE}\n\n{BODY}"
    doc = blank(text)

    def span(phrase: str, label: str) -> Span:
        start = text.index(phrase)
        s = doc.char_span(start, start + len(phrase), label=label)
        assert s is not None
        return s

    doc.ents = [
        span("Baghdad", "GPE"),
        span("14", "CARDINAL"),
        span("Kataib Hezbollah", "ORG"),
        span("June 25", "DATE"),
        span("two", "CARDINAL"),
    ]
    return doc, len(TITLE)


def test_tokens_split_at_title_end_and_drop_stop_words_and_punctuation(blank: spacy.Language) -> None:
    doc, title_end = _doc(blank)
    f = link_features(doc, title_end)
    assert f.title_tokens == ("militia", "leaders", "detained", "baghdad", "raid")
    assert "on" not in f.body_tokens and "," not in f.body_tokens and "." not in f.body_tokens
    assert f.body_tokens[:3] == ("iraqi", "forces", "detained")
    assert "14" in f.body_tokens  # alnum tokens are kept
    # The blank pipeline has no lemmatizer: lemmas fall back to the lowercased form.
    assert f.title_lemmas == f.title_tokens


def test_entities_split_and_skip_number_labels(blank: spacy.Language) -> None:
    doc, title_end = _doc(blank)
    f = link_features(doc, title_end)
    assert f.title_entities == ("baghdad",)
    assert f.body_entities == ("kataib hezbollah",)
    assert "june 25" in f.numbers and "14" in f.numbers
    assert "two" not in f.numbers  # small count words keep no two events apart


def test_canonical_extension_is_the_entity_key(blank: spacy.Language) -> None:
    if not Span.has_extension("canonical"):
        Span.set_extension("canonical", default=None)
    doc, title_end = _doc(blank)
    kh = next(e for e in doc.ents if e.text == "Kataib Hezbollah")
    kh._.canonical = "Kata'ib Hizballah"
    f = link_features(doc, title_end)
    assert f.body_entities == ("kata'ib hizballah",)
    assert f.title_entities == ("baghdad",)  # unset canonical falls back to the text


def test_fingerprint_of_the_body(blank: spacy.Language) -> None:
    doc, title_end = _doc(blank)
    f = link_features(doc, title_end)
    assert len(f.fingerprint) == N_HASHES
    body_words = [t.lower_ for t in blank(BODY) if t.is_alpha or t.like_num]
    assert f.fingerprint == fingerprint(body_words)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("June 25, 2020", "june 25 2020"), ("more than 20", "20"), ("two", None), ("7", None), ("3.5", "3.5")],
)
def test_normalise_number(text: str, expected: str | None) -> None:
    assert normalise_number(text) == expected


WORDS = [f"w{i}" for i in range(400)]


def test_near_copy_scores_high_and_unrelated_text_low() -> None:
    base = WORDS[:300]
    edited = base.copy()
    edited[150] = "changed"
    assert jaccard_estimate(fingerprint(base), fingerprint(edited)) > 0.85
    assert jaccard_estimate(fingerprint(base), fingerprint(WORDS[100:400][::-1])) < 0.2


def test_fingerprint_is_stable_across_processes() -> None:
    code = "from pipeline.features import fingerprint; print(list(fingerprint('a b c d e f g'.split())))"
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert len(outs) == 1
    assert outs.pop().strip() == str(list(fingerprint("a b c d e f g".split())))


def test_empty_and_short_texts() -> None:
    assert fingerprint([]) == ()
    assert len(fingerprint(["one", "two"])) == N_HASHES
    assert jaccard_estimate((), ()) == 0.0
    assert jaccard_estimate((1, 2), (1, 2, 3)) == 0.0


@given(st.lists(st.sampled_from(WORDS[:30]), min_size=1, max_size=60), st.lists(st.sampled_from(WORDS[:30]), max_size=60))
def test_jaccard_estimate_properties(a: list[str], b: list[str]) -> None:
    fa, fb = fingerprint(a), fingerprint(b)
    assert jaccard_estimate(fa, fa) == 1.0
    assert jaccard_estimate(fa, fb) == jaccard_estimate(fb, fa)
    assert 0.0 <= jaccard_estimate(fa, fb) <= 1.0


def test_a_giant_word_is_not_a_term_and_does_not_bloat_the_story(nlp) -> None:
    """A 100,000-letter "word" (an inline blob) is no token, lemma or entity key: the story it
    opens exports at the size of an ordinary one (it was kept whole in several sub-vectors)."""
    from pipeline.link import LinkerConfig, StoryLinker
    from pipeline.linking import encode

    blob = "Zq" + "a" * 100_000
    title = "Storm hits the coast"
    doc = nlp(f"{title}\n\nOfficials said the storm hit the coast on Monday. {blob} was reported in Riverton.")
    f = link_features(doc, len(title))
    terms = [*f.title_tokens, *f.body_tokens, *f.title_lemmas, *f.body_lemmas, *f.title_entities, *f.body_entities, *f.numbers]
    assert terms and max(len(t) for t in terms) <= 120
    assert "riverton" in f.body_tokens
    linker = StoryLinker(LinkerConfig())
    d = linker.link("a1", f, None)
    assert len(encode(linker.export_story(d.story))) < 20_000
