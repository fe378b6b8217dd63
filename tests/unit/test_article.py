from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.article import BadArticle, dead_letter, derive_id, parse_article


def test_only_text_is_required_and_id_is_derived_from_content():
    a = parse_article(b'{"text": "Police arrested 12 people."}')
    b = parse_article(b'{"text": "Police  arrested 12 people."}')  # whitespace does not change the id
    c = parse_article(b'{"text": "Police arrested 13 people."}')
    assert a.id == b.id == derive_id("Police arrested 12 people.")
    assert a.id != c.id
    assert a.published is None and a.title is None


def test_full_record_and_published_iso8601():
    rec = {"id": "x1", "url": "https://e.com/a", "source": "Reuters", "title": "T", "text": "Body.",
           "published": "2020-06-26T01:00:00Z", "language": "en"}
    a = parse_article(json.dumps(rec))
    assert a.id == "x1" and a.source == "Reuters"
    assert a.published is not None and a.published.year == 2020 and a.published.tzinfo is not None
    assert parse_article(json.dumps({**rec, "published": "2020-06-26"})).published.day == 26


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"title": "x"}', "missing_text"),
        (b'{"text": "   "}', "empty_text"),
        (b'{"text": 42}', "wrong_type"),
        (b'{"text": "a", "published": "yesterday"}', "invalid_published"),
        (b'{"text": "a\\u0000b"}', "binary"),
        (b"\xff\xfe\x00garbage", "invalid_utf8"),
    ],
)
def test_bad_records_have_machine_readable_reasons(raw, reason):
    with pytest.raises(BadArticle) as e:
        parse_article(raw)
    assert e.value.reason == reason
    assert e.value.message


def test_fields_outside_the_format_are_ignored():
    a = parse_article(b'{"text": "a", "story": "1-ecb", "feed_id": 7}')
    assert a.text == "a" and "story" not in a.model_dump()


def test_too_large():
    with pytest.raises(BadArticle) as e:
        parse_article(json.dumps({"text": "x" * 2000}), max_text_bytes=1000)
    assert e.value.reason == "too_large"


def test_dead_letter_keeps_payload_bounded():
    err = BadArticle("invalid_json", "bad")
    letter = dead_letter(b"x" * 100_000, err, stage="parse")
    assert letter.reason == "invalid_json" and letter.stage == "parse"
    assert len(letter.payload) < 70_000 and "more characters" in letter.payload


@settings(max_examples=10_000, deadline=None)
@given(st.binary(max_size=512))
def test_parser_never_raises_anything_but_bad_article_on_bytes(raw):
    try:
        a = parse_article(raw)
    except BadArticle as e:
        assert e.reason
    else:
        assert a.text.strip()


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "text", "title", "published", "url", "x"]),
                       st.one_of(st.none(), st.text(max_size=30), st.integers(), st.lists(st.integers(), max_size=2))))
def test_parser_on_arbitrary_records(rec):
    try:
        a = parse_article(json.dumps(rec))
    except BadArticle:
        return
    assert a.model_validate_json(a.model_dump_json()) == a


@pytest.mark.parametrize("field,size", [("id", 513), ("title", 4001), ("url", 8001), ("source", 1001)])
def test_overlong_short_fields_are_too_large(field, size):
    """An id is an Elasticsearch _id (512 bytes at most) and a Kafka key; a title, URL or outlet
    that long is not one. Each is rejected with the field named, not sent on to fail later."""
    with pytest.raises(BadArticle) as e:
        parse_article(json.dumps({"text": "Floods hit Riverton.", field: "x" * size}))
    assert e.value.reason == "too_large" and f"'{field}'" in e.value.message
    assert parse_article(json.dumps({"text": "Floods hit Riverton.", field: "x" * (size - 1)}))
