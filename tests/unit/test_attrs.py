"""pipeline.attrs: FastAttributeRuler must give exactly what spaCy's AttributeRuler gives."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from spacy.attrs import DEP, LEMMA, MORPH, NORM, POS, TAG
from spacy.language import Language
from spacy.pipeline import AttributeRuler
from spacy.tokens import Doc, Token
from spacy.lang.en import English
from spacy.vocab import Vocab, create_vocab

import pipeline.nlp as pipeline_nlp
from pipeline.aliases import AliasTable
from pipeline.attrs import FACTORY, FastAttributeRuler, swap_attribute_ruler
from pipeline.settings import get_settings
from tests.conftest import SHARED_DATA

EXT = "crosswire_test_attrs_flag"
if not Token.has_extension(EXT):
    Token.set_extension(EXT, default=None)

ARRAY_ATTRS = [POS, TAG, MORPH, LEMMA, DEP, NORM]


# --------------------------------------------------------------------------- helpers


def _vocab() -> Vocab:
    """A fresh English vocab: lexemes get LOWER, IS_SPACE, ... (a bare Vocab() leaves them 0)."""
    return create_vocab("en", English.Defaults)


def _doc(vocab: Vocab, rows: Sequence[tuple[str, str, str]]) -> Doc:
    """A Doc of (word, tag, dep) rows; "" leaves the tag or dep missing."""
    doc = Doc(vocab, words=[w for w, _, _ in rows])
    for tok, (_, tag, dep) in zip(doc, rows):
        tok.tag_ = tag
        tok.dep_ = dep
    return doc


def _rulers(vocab: Vocab, patterns: list[dict[str, Any]]) -> tuple[AttributeRuler, FastAttributeRuler]:
    stock = AttributeRuler(vocab)
    stock.add_patterns(patterns)
    fast = FastAttributeRuler(vocab)
    fast.add_patterns(patterns)
    return stock, fast


def _state(doc: Doc) -> list[Any]:
    """Everything an attribute ruler can write, per token."""
    return [
        (tok.pos_, tok.tag_, str(tok.morph), tok.lemma_, tok.dep_, tok.norm_, tok._.get(EXT)) for tok in doc
    ] + [doc.to_array(ARRAY_ATTRS).tolist()]


def _run_both(vocab: Vocab, patterns: list[dict[str, Any]], rows: Sequence[tuple[str, str, str]]) -> tuple[Any, Any]:
    stock, fast = _rulers(vocab, patterns)
    return _state(stock(_doc(vocab, rows))), _state(fast(_doc(vocab, rows)))


def _token_rows(doc: Doc) -> list[tuple[Any, ...]]:
    """What the acceptance test compares after the full pipeline."""
    return [
        (t.text, t.pos_, t.tag_, str(t.morph), t.lemma_, t.dep_, t.head.i, t.ent_iob_, t.ent_type_, t.is_sent_start)
        for t in doc
    ]


# --------------------------------------------------------------------------- model-free


def test_compiles_plain_patterns_and_falls_back_on_the_rest() -> None:
    vocab = _vocab()
    patterns = [
        {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}},
        {"patterns": [[{"TAG": "RB", "LOWER": {"IN": ["not", "n't"]}}]], "attrs": {"POS": "PART"}},
        {"patterns": [[{"DEP": {"NOT_IN": ["det", ""]}, "TAG": {"IN": ["DT", "WDT"]}}]], "attrs": {"POS": "PRON"}},
        {"patterns": [[{"LOWER": {"REGEX": "^n[ou]thin'$"}}]], "attrs": {"LEMMA": "nothing"}},
        {"patterns": [[{"IS_SPACE": True}]], "attrs": {"TAG": "_SP"}},
        {"patterns": [[{"LOWER": "let"}, {"LOWER": "'s"}]], "attrs": {"LEMMA": "us"}, "index": -1},
        {"patterns": [[{"LOWER": "very", "OP": "+"}]], "attrs": {"POS": "ADV"}},  # operator
        {"patterns": [[{"MORPH": {"IS_SUBSET": ["Number=Sing"]}}]], "attrs": {"LEMMA": "x"}},  # morph test
    ]
    _, fast = _rulers(vocab, patterns)
    assert fast.tables.n_compiled == 6
    assert fast.tables.n_fallback == 2
    assert fast.tables.bulk


def test_later_rules_win_across_compiled_and_fallback_patterns() -> None:
    vocab = _vocab()
    patterns = [
        {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN", "MORPH": "Number=Sing"}},
        {"patterns": [[{"LOWER": "run", "OP": "+"}]], "attrs": {"POS": "VERB"}},  # fallback Matcher
        {"patterns": [[{"LOWER": "run", "DEP": "nsubj"}]], "attrs": {"POS": "PROPN"}},
        {"patterns": [[{"LOWER": "dog"}, {"LOWER": "run"}]], "attrs": {"LEMMA": "RUN"}, "index": 1},
    ]
    rows = [("dog", "NN", "nsubj"), ("run", "NN", "nsubj"), ("run", "NN", "ROOT"), ("cat", "VB", "")]
    stock, fast = _run_both(vocab, patterns, rows)
    assert fast == stock
    run_subj, run_root = fast[1], fast[2]
    assert run_subj[0] == "PROPN" and run_subj[3] == "RUN"  # rule 2 beats rule 1; rule 3 adds a lemma
    assert run_root[0] == "VERB" and run_root[2] == "Number=Sing"


def test_matching_reads_the_doc_before_any_rule_wrote() -> None:
    """Rule 0 retags "x" as VB; rule 1 (on VB) must not see that, as in spaCy."""
    vocab = _vocab()
    patterns = [
        {"patterns": [[{"LOWER": "x"}]], "attrs": {"TAG": "VB"}},
        {"patterns": [[{"TAG": "VB"}]], "attrs": {"POS": "VERB"}},
    ]
    stock, fast = _run_both(vocab, patterns, [("x", "NN", ""), ("go", "VB", "")])
    assert fast == stock
    assert fast[0][:2] == ("", "VB") and fast[1][:2] == ("VERB", "VB")


def test_rules_writing_other_attributes_take_the_ordered_path() -> None:
    vocab = _vocab()
    patterns = [
        {"patterns": [[{"TAG": "NN"}]], "attrs": {"NORM": "thing", "_": {EXT: "a"}}},
        {"patterns": [[{"LOWER": "dog"}]], "attrs": {"NORM": "canine", "POS": "NOUN"}},
        {"patterns": [[{"TAG": {"NOT_IN": ["NN"]}}]], "attrs": {"_": {EXT: "b"}}},
    ]
    stock, fast = _rulers(vocab, patterns)
    assert not fast.tables.bulk
    rows = [("dog", "NN", ""), ("cat", "NN", ""), ("ran", "VBD", "")]
    got, want = _state(fast(_doc(vocab, rows))), _state(stock(_doc(vocab, rows)))
    assert got == want
    assert [r[5] for r in got[:3]] == ["canine", "thing", "ran"]
    assert [r[6] for r in got[:3]] == ["a", "a", "b"]


def test_index_outside_the_pattern_raises_like_spacy() -> None:
    vocab = _vocab()
    patterns = [{"patterns": [[{"LOWER": "a"}]], "attrs": {"POS": "DET"}, "index": 1}]
    stock, fast = _rulers(vocab, patterns)
    assert fast.tables.n_fallback == 1
    for ruler in (stock, fast):
        with pytest.raises(ValueError, match="E1001"):
            ruler(_doc(vocab, [("a", "DT", "")]))


def test_add_after_use_recompiles_and_bytes_round_trip() -> None:
    vocab = _vocab()
    fast = FastAttributeRuler(vocab)
    fast.add([[{"TAG": "NN"}]], {"POS": "NOUN"})
    assert fast(_doc(vocab, [("dog", "NN", "")]))[0].pos_ == "NOUN"
    fast.add([[{"LOWER": "dog"}]], {"POS": "PROPN"})
    assert fast(_doc(vocab, [("dog", "NN", "")]))[0].pos_ == "PROPN"
    copy = FastAttributeRuler(vocab).from_bytes(fast.to_bytes())
    assert copy.patterns == fast.patterns
    assert copy(_doc(vocab, [("dog", "NN", "")]))[0].pos_ == "PROPN"
    fast.clear()
    assert fast(_doc(vocab, [("dog", "NN", "")]))[0].pos_ == ""


def test_swap_keeps_name_position_and_patterns() -> None:
    nlp = Language(_vocab())
    nlp.add_pipe("sentencizer")
    old = nlp.add_pipe("attribute_ruler")
    old.add([[{"LOWER": "dog"}]], {"POS": "NOUN"})  # type: ignore[attr-defined]
    nlp.add_pipe("sentencizer", name="after")
    names = list(nlp.pipe_names)
    new = swap_attribute_ruler(nlp)
    assert isinstance(new, FastAttributeRuler)
    assert nlp.pipe_names == names
    assert nlp.get_pipe_meta("attribute_ruler").factory == FACTORY
    assert new.patterns == old.patterns  # type: ignore[attr-defined]
    assert nlp("a dog")[1].pos_ == "NOUN"
    assert swap_attribute_ruler(nlp) is None  # already swapped
    assert swap_attribute_ruler(Language(Vocab())) is None  # nothing to swap


# Random rules and docs: spaCy's AttributeRuler is the oracle.
WORDS = ["the", "The", "'s", "is", "it", "I", "gon", "na", "ai", "n't", " ", "\n", "dog", "let", "all", "y'"]
TAGS = ["", "NN", "VBZ", "DT", "PRP", "_SP", "POS"]
DEPS = ["", "nsubj", "expl", "ROOT", "aux", "dep"]
LOWERS = sorted({w.lower() for w in WORDS})


def _value(options: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(options),
        st.fixed_dictionaries({"IN": st.lists(st.sampled_from(options), max_size=3)}),
        st.fixed_dictionaries({"NOT_IN": st.lists(st.sampled_from(options), max_size=3)}),
    )


@st.composite
def _specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    keys = draw(st.lists(st.sampled_from(["TAG", "LOWER", "DEP", "IS_SPACE", "ORTH", "REGEX"]), max_size=3,
                         unique=True))
    if draw(st.integers(0, 11)) == 0:
        keys.append("LENGTH")
    for key in keys:
        if key == "TAG":
            spec["TAG"] = draw(_value(TAGS))
        elif key == "DEP":
            spec["DEP"] = draw(_value(DEPS))
        elif key == "LOWER":
            spec["LOWER"] = draw(_value(LOWERS))
        elif key == "ORTH":
            spec["ORTH"] = draw(st.sampled_from(WORDS))
        elif key == "IS_SPACE":
            spec["IS_SPACE"] = draw(st.booleans())
        elif key == "LENGTH":  # not compiled: exercises the fallback Matcher
            spec["LENGTH"] = draw(st.integers(1, 3))
        else:
            spec["NORM"] = {"REGEX": draw(st.sampled_from(["^n", "s$", "^.$", "'"]))}
    return spec


@st.composite
def _rules(draw: st.DrawFn) -> dict[str, Any]:
    with_op = draw(st.integers(0, 7)) == 0
    length = draw(st.integers(1, 2))
    patterns = []
    for _ in range(draw(st.integers(1, 2))):
        pattern = [draw(_specs()) for _ in range(length)]
        if with_op:
            pattern[0]["OP"] = draw(st.sampled_from(["?", "+"]))
            pattern.append(draw(_specs()))  # a second token keeps every match non-empty
        patterns.append(pattern)
    index = draw(st.sampled_from([0, -1])) if with_op else draw(st.integers(-length, length - 1))
    values = {
        "POS": st.sampled_from(["NOUN", "VERB", "AUX", "PRON"]),
        "TAG": st.sampled_from(TAGS[1:]),
        "MORPH": st.sampled_from(["Number=Sing", "Case=Nom|Person=1", "_"]),
        "LEMMA": st.sampled_from(WORDS),
        "DEP": st.sampled_from(DEPS[1:]),
    }
    keys = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3, unique=True))
    attrs = {k: draw(values[k]) for k in keys}
    return {"patterns": patterns, "attrs": attrs, "index": index}


_rows = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(TAGS), st.sampled_from(DEPS)), min_size=1,
                 max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns=st.lists(_rules(), min_size=1, max_size=8), docs=st.lists(_rows, min_size=1, max_size=3))
def test_same_output_as_spacy_on_random_rules(patterns: list[dict[str, Any]], docs: list[Any]) -> None:
    vocab = _vocab()
    stock, fast = _rulers(vocab, patterns)
    event(f"fallback patterns: {fast.tables.n_fallback > 0}, multi-token compiled: {bool(fast.tables.multis)}")
    for rows in docs:  # several docs: the per-signature memo is reused between them
        got = _state(fast(_doc(vocab, rows)))
        assert got == _state(stock(_doc(vocab, rows)))
        event(f"some token changed: {got != _state(_doc(vocab, rows))}")


# --------------------------------------------------------------------------- the real model

SENTENCES = [
    "I can't believe they won't go, y'all. We ain't done, ain't we?",
    "He's gonna do it; she's got ta leave. Let's go! C'mon, it's 'nuff.",
    "There's a problem and there are two more; there was one, there were none.",
    "Hello  \n\n  world \t ok\n\n\nThe   end.",
    "Ain't nobody doin' nothin' wrong with 'em, ol' somethin' goin' on.",
    "I'd have gone if I'd known. You'd think it's his, not hers. Give it to me and you.",
    "That is what that man said, and this is the one that I like; those are theirs.",
    "Whether or not he has it, she does have it, but did they? Do you? I am, you're, we've.",
]


@pytest.fixture(scope="module")
def stock_nlp() -> Language:
    """load_nlp exactly as before the swap: spaCy's own AttributeRuler."""
    s = get_settings()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline_nlp, "swap_attribute_ruler", lambda nlp: None)
        return pipeline_nlp.load_nlp(s.spacy_model, AliasTable.load(s.aliases_file))


def _pre_ruler(nlp: Language, texts: Iterable[str]) -> list[Doc]:
    names = [n for n, _ in nlp.pipeline]
    with nlp.select_pipes(enable=names[: names.index("attribute_ruler")]):
        return list(nlp.pipe(texts, batch_size=32))


@pytest.mark.slow
def test_worker_pipeline_uses_the_fast_ruler_with_every_pattern_compiled(nlp: Language,
                                                                         stock_nlp: Language) -> None:
    ruler = nlp.get_pipe("attribute_ruler")
    assert isinstance(ruler, FastAttributeRuler)
    assert nlp.pipe_names == stock_nlp.pipe_names
    assert ruler.patterns == stock_nlp.get_pipe("attribute_ruler").patterns  # type: ignore[attr-defined]
    assert ruler.tables.n_fallback == 0 and ruler.tables.n_compiled >= len(ruler.patterns)


@pytest.mark.slow
def test_full_pipeline_identical_on_seeds_and_special_sentences(nlp: Language, stock_nlp: Language,
                                                                seed_texts: dict[str, str]) -> None:
    texts = list(seed_texts.values()) + SENTENCES
    n = 0
    for ours, theirs in zip(nlp.pipe(texts, batch_size=32), stock_nlp.pipe(texts, batch_size=32), strict=True):
        assert _token_rows(ours) == _token_rows(theirs)
        assert [(e.start, e.end, e.label_, e._.canonical) for e in ours.ents] == [
            (e.start, e.end, e.label_, e._.canonical) for e in theirs.ents
        ]
        n += len(ours)
    assert n > 3000


@pytest.mark.slow
def test_comparison_would_catch_a_missing_rule(nlp: Language) -> None:
    """Guard against a vacuous comparison: dropping the "n't" rule must show up."""
    ruler = nlp.get_pipe("attribute_ruler")
    patterns = [p for p in ruler.patterns if p["attrs"].get("LEMMA") != "not"]  # type: ignore[attr-defined]
    assert len(patterns) == len(ruler.patterns) - 1  # type: ignore[attr-defined]
    crippled = FastAttributeRuler(nlp.vocab)
    crippled.add_patterns(patterns)
    a, b = _pre_ruler(nlp, [SENTENCES[0]] * 2)
    assert _state(ruler(a)) != _state(crippled(b))


ECB = SHARED_DATA / "ecbplus-dev.jsonl"


@pytest.mark.slow
@pytest.mark.skipif(not ECB.exists(), reason="ECB+ dev set not present")
def test_component_identical_on_ecbplus(stock_nlp: Language) -> None:
    """Every ECB+ dev article: the same pre-ruler Doc through spaCy's ruler and ours. The ruler is
    the only difference between the pipelines, so equal Docs here mean equal pipelines."""
    texts = [json.loads(line)["text"] for line in ECB.read_text(encoding="utf-8").splitlines() if line.strip()]
    stock = stock_nlp.get_pipe("attribute_ruler")
    fast = FastAttributeRuler(stock_nlp.vocab)
    fast.add_patterns(stock.patterns)  # type: ignore[attr-defined]
    tokens = 0
    for doc in _pre_ruler(stock_nlp, texts):
        copy = doc.copy()
        assert _state(fast(copy)) == _state(stock(doc))
        tokens += len(doc)
    assert len(texts) >= 400 and tokens > 100_000
