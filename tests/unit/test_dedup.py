from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dedup import (
    DUPLICATE_SHARE,
    MAX_SENTENCES,
    MIN_LEMMAS,
    VERSION,
    alignment,
    find_duplicate,
    is_near_duplicate,
    sentence_signature,
    signature_of_sentences,
    similarity,
)
from pipeline.features import link_features
from pipeline.normalise import normalise, split_title
from tests.conftest import REPO, SEEDS

# --------------------------------------------------------------------------- hand-made articles

ORIGINAL = [
    "Iraqi counterterrorism forces detained 14 members of the militia in a raid on Thursday night.",
    "One of the men had been involved in previous rocket attacks and was planning another, officials said.",
    "The raid targeted the headquarters of Kataib Hezbollah in southern Baghdad.",
    "The United States has blamed the group for rocket attacks on bases hosting American troops.",
    "Prime Minister Mustafa al-Kadhimi took office in May promising to crack down on armed groups.",
    "The militia denied any involvement in the attacks and demanded the release of its members.",
]
# The same article machine-reworded, sentence for sentence (synonyms, reordered clauses).
REWORDED = [
    "The 14 members of the militia detained by Iraqi counterterrorism forces in a Thursday night raid.",
    "Officials said one of the men had been involved in previous rocket attacks and was planning another.",
    "The raid struck the headquarters of Kataib Hezbollah in southern Baghdad.",
    "The United States blamed the group for rocket attacks against bases that host American troops.",
    "Prime Minister Mustafa al-Kadhimi took office in May and promised a crackdown on armed groups.",
    "The militia rejected any involvement in the attacks and demanded that its members be released.",
]
# An independent report of the same event that shares one quote with the original.
INDEPENDENT = [
    "Security forces stormed a compound in Baghdad overnight and arrested at least 19 fighters.",
    "One of the men had been involved in previous rocket attacks and was planning another, officials said.",
    "A spokesman for the paramilitary umbrella group said the detainees were handed to its security branch.",
    "Witnesses described heavy gunfire and armoured vehicles blocking the roads around the compound.",
    "Washington welcomed the operation but said more needed to be done to protect its diplomats.",
    "Analysts said the move would test the new government's resolve against powerful factions.",
]


@pytest.fixture(scope="module")
def blank() -> spacy.Language:
    nlp = spacy.blank("en")  # tokenizer, stop words, lexical attributes; no lemmatizer, no model
    nlp.add_pipe("sentencizer")
    return nlp


def _sig(blank: spacy.Language, sentences: list[str], title: str = "") -> tuple[int, ...]:
    prefix = title + "\n\n" if title else ""
    return sentence_signature(blank(prefix + " ".join(sentences)), len(title))


def test_reworded_copy_is_flagged(blank: spacy.Language) -> None:
    a, b = _sig(blank, ORIGINAL), _sig(blank, REWORDED)
    assert alignment(a, b)[0] >= 5
    assert similarity(a, b) >= DUPLICATE_SHARE
    assert is_near_duplicate(a, b) and is_near_duplicate(b, a)


def test_independent_report_sharing_one_quote_is_not_flagged(blank: spacy.Language) -> None:
    a, b = _sig(blank, ORIGINAL), _sig(blank, INDEPENDENT)
    al_a, n_a, al_b, n_b = alignment(a, b)
    assert al_a == 1 and al_b == 1  # the shared quote aligns, nothing else does
    assert similarity(a, b) == pytest.approx(1 / 6)
    assert not is_near_duplicate(a, b)


def test_identical_texts_are_flagged_and_similarity_is_one(blank: spacy.Language) -> None:
    a, b = _sig(blank, ORIGINAL), _sig(blank, ORIGINAL)
    assert a == b and similarity(a, b) == 1.0 and is_near_duplicate(a, b)
    short = _sig(blank, ORIGINAL[:1])  # one sentence: too short for a share, still a copy of itself
    assert is_near_duplicate(short, short)


def test_title_is_left_out(blank: spacy.Language) -> None:
    assert _sig(blank, ORIGINAL, "A completely different headline about markets") == _sig(blank, ORIGINAL)


def test_copy_of_part_of_a_longer_text_is_flagged_both_ways(blank: spacy.Language) -> None:
    long = _sig(blank, ORIGINAL + INDEPENDENT)
    part = _sig(blank, REWORDED[:4])
    assert similarity(long, part) == similarity(part, long) >= 0.75
    assert is_near_duplicate(part, long) and is_near_duplicate(long, part)


def test_numbers_are_content(blank: spacy.Language) -> None:
    a = _sig(blank, ["Police detained 14 men near the border crossing."])
    b = _sig(blank, ["Police detained 19 men near the border crossing."])
    assert a != b


def test_short_sentences_are_skipped_and_size_is_bounded() -> None:
    assert signature_of_sentences([["he", "say"], []]) == ()
    many = [[f"w{i}", f"x{i}", f"y{i}", f"z{i}"] for i in range(MAX_SENTENCES + 10)]
    sig = signature_of_sentences(many)
    assert sig[0] == VERSION and len(sig) == 1 + MAX_SENTENCES * 4
    assert all(0 <= v < 2**32 for v in sig)


def test_malformed_or_other_version_signatures_never_match() -> None:
    sig = signature_of_sentences([["alpha", "beta", "gamma", "delta"]] * 3)
    other_version = (VERSION + 1, *sig[1:])
    assert similarity(sig, other_version) == 0.0 and not is_near_duplicate(sig, other_version)
    assert similarity(sig, sig[:-1]) == 0.0
    assert similarity(sig, ()) == 0.0 and not is_near_duplicate((), ())


def test_find_duplicate_picks_the_most_similar_member(blank: spacy.Language) -> None:
    sig = _sig(blank, REWORDED)
    members = [
        ("independent", _sig(blank, INDEPENDENT)),
        ("partial", _sig(blank, ORIGINAL[:3] + INDEPENDENT[2:])),
        ("original", _sig(blank, ORIGINAL)),
        ("empty", ()),
    ]
    hit = find_duplicate(sig, members)
    assert hit is not None and hit[0] == "original"
    assert hit[1] == pytest.approx(similarity(sig, members[2][1]))
    assert find_duplicate(sig, members[:1]) is None
    assert find_duplicate((), members) is None


lemma_sets = st.lists(
    st.lists(st.sampled_from([f"w{i}" for i in range(40)]), min_size=0, max_size=12), min_size=0, max_size=20
)


@settings(max_examples=60, deadline=None)
@given(lemma_sets, lemma_sets)
def test_similarity_is_symmetric_bounded_and_agrees_with_find_duplicate(a_s, b_s) -> None:
    a, b = signature_of_sentences(a_s), signature_of_sentences(b_s)
    s = similarity(a, b)
    assert s == similarity(b, a) and 0.0 <= s <= 1.0
    if a:
        assert similarity(a, a) == 1.0
    hit = find_duplicate(a, [("b", b)])
    assert (hit is not None) == is_near_duplicate(a, b)
    if hit is not None:
        assert hit == ("b", pytest.approx(s))


@settings(max_examples=40, deadline=None)
@given(lemma_sets)
def test_eligible_sentence_count(sents) -> None:
    sig = signature_of_sentences(sents)
    n = min(MAX_SENTENCES, sum(len(set(s)) >= MIN_LEMMAS for s in sents))
    assert len(sig) == (1 + 4 * n if n else 0)


def test_signature_is_the_same_in_another_process() -> None:
    sents = [ORIGINAL[0].lower().split(), REWORDED[1].lower().split()]
    here = signature_of_sentences(sents)
    code = (
        "import json, sys; from pipeline.dedup import signature_of_sentences; "
        "print(json.dumps(signature_of_sentences(json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sents)], capture_output=True, text=True, check=True, cwd=REPO, env=env
    )
    assert tuple(json.loads(out.stdout)) == here


# --------------------------------------------------------------------------- the seeds


@pytest.fixture(scope="module")
def seed_signatures(nlp) -> dict[str, tuple[int, ...]]:
    """The real pipeline path: normalise, title split, the worker's spaCy pipeline, link features."""
    out = {}
    for line in (SEEDS / "seeds.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        title, body = split_title(normalise((SEEDS / rec["text_file"]).read_text(encoding="utf-8")), rec.get("title"))
        doc = nlp(title + "\n\n" + body)
        out[rec["id"][:3]] = link_features(doc, len(title)).sentences
    return out


def test_seeds_only_the_two_nyt_texts_are_near_duplicates(seed_signatures) -> None:
    # 002 is a machine-reworded copy of a NYT article and 004 a lightly edited reprint of it:
    # a copy. 001 (reworded later Reuters story) and 003 (the first Reuters flash) are two
    # versions of a wire story with different facts; 000 is an AFP compilation that borrows a
    # few sentences. Neither pair restates most of the shorter text.
    flagged = {
        (a, b)
        for a, b in itertools.combinations(sorted(seed_signatures), 2)
        if is_near_duplicate(seed_signatures[a], seed_signatures[b])
    }
    assert flagged == {("002", "004")}
    assert similarity(seed_signatures["002"], seed_signatures["004"]) >= 0.6
    others = [
        similarity(seed_signatures[a], seed_signatures[b])
        for a, b in itertools.combinations(sorted(seed_signatures), 2)
        if (a, b) != ("002", "004")
    ]
    assert max(others) < 0.5
    assert all(len(s) > 1 + 4 * 10 for s in seed_signatures.values())  # every seed has 10+ sentences


def test_seed_replay_marks_the_reprint_as_a_duplicate_of_the_reworded_copy(nlp) -> None:
    # The whole path (normalise, spaCy, features, the linker): the later of the two NYT texts is
    # marked a duplicate of the earlier and joins its story; nothing else is a duplicate.
    from pipeline.analyse import Analyser
    from pipeline.linking import make_linker
    from pipeline.replay import replay
    from pipeline.settings import Settings
    from pipeline.sources import expand, iter_records

    result = replay(iter_records(expand([str(SEEDS)])), Analyser(nlp), make_linker(Settings()))
    links = {la.analysed.article.id[:3]: la.link for la in result.linked}
    assert sorted(links) == ["000", "001", "002", "003", "004"]
    dups = {k: v.duplicate_of[:3] for k, v in links.items() if v.duplicate_of}
    assert dups == {"004": "002"}
    assert links["004"].story == links["002"].story
