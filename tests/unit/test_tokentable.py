from __future__ import annotations

import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.tokentable import token_table
from tests.conftest import SEEDS


def _same_as_tokens(doc) -> None:
    tt = token_table(doc)
    assert tt.idx == [t.idx for t in doc]
    assert tt.text == [t.text for t in doc]
    assert tt.lower == [t.lower_ for t in doc]
    assert tt.lemma == [t.lemma_.lower() for t in doc]
    assert tt.is_alpha == [t.is_alpha for t in doc]
    assert tt.is_punct == [t.is_punct for t in doc]
    assert tt.is_space == [t.is_space for t in doc]
    assert tt.is_stop == [t.is_stop for t in doc]
    assert tt.like_num == [t.like_num for t in doc]
    assert [tt.end_char(i) for i in range(len(doc))] == [t.idx + len(t.text) for t in doc]


def test_the_table_holds_what_the_tokens_say_on_a_seed(nlp) -> None:
    text = sorted(SEEDS.glob("0*.txt"))[0].read_text(encoding="utf-8")
    doc = nlp(text)
    _same_as_tokens(doc)
    tt = token_table(doc)
    assert [(s.start, s.end) for s in tt.sentences(doc)] == [(s.start, s.end) for s in doc.sents]
    assert len(tt.sentences(doc)) > 5
    assert token_table(doc) is tt  # built once per doc


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ9 ,.-'\n\t$%é")), max_size=80))
def test_any_text_reads_the_same_through_the_table(text: str) -> None:
    doc = _blank(text)
    _same_as_tokens(doc)


def test_a_doc_without_sentence_boundaries_has_none(nlp) -> None:
    doc = _blank("Three people died. Two were hurt.")
    assert token_table(doc).sent_starts is None
    empty = nlp("")
    assert token_table(empty).idx == [] and token_table(empty).sentences(empty) == []


_BLANK = spacy.blank("en")


def _blank(text: str):
    return _BLANK(text)
