"""Search documents: deterministic ids, JSON-safe sources, fields matching the templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from pipeline.documents import (
    alert_doc,
    article_doc,
    claim_docs,
    contradiction_doc,
    display_interval,
    iso,
    story_doc,
)
from pipeline.search import INDEX_NAMES, load_template
from pipeline.types import (
    AlertRecord,
    AnalysedArticle,
    Article,
    Claim,
    Contradiction,
    Entity,
    Interval,
    LinkDecision,
    LinkedArticle,
    Side,
    Story,
    stable_id,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _claim(article_id: str, n: int, value: Interval | None) -> Claim:
    return Claim(
        id=stable_id(article_id, str(n)),
        article_id=article_id,
        predicate="detained",
        theme="person",
        event="main",
        kind="count" if value else "slot",
        value=value,
        slot=None if value else "PMF security branch",
        source="police",
        sentence=f"Sentence {n}.",
        start=n * 10,
        end=n * 10 + 9,
    )


def _linked(published: datetime | None = T0, hi: float | None = 14) -> LinkedArticle:
    art = Article(id="art-1", text="Body", source="Wire A", title="Raid", url="https://x.example/1", published=published)
    analysed = AnalysedArticle(
        article=art,
        clean_text="Body",
        title="Raid",
        language="en",
        words=1,
        entities=(
            Entity(text="KH", label="ORG", canonical="Kataib Hezbollah", start=0, end=2),
            Entity(text="Kataib Hezbollah", label="PERSON", canonical="Kataib Hezbollah", start=5, end=21),
        ),
        claims=(_claim("art-1", 0, Interval(lo=14, hi=hi)), _claim("art-1", 1, None)),
    )
    return LinkedArticle(analysed=analysed, link=LinkDecision(story="story-9", is_new=False, score=0.7))


def _contradiction() -> Contradiction:
    return Contradiction(
        id=stable_id("story-9", "numeric", "detained:person@main"),
        story="story-9",
        kind="numeric",
        about="detained:person@main",
        sides=(
            Side(value="14", interval=Interval(lo=14, hi=14), articles=("a", "b"), outlets=("A", "B"), quotes=("q1",)),
            Side(value=">= 23", interval=Interval(lo=23, hi=None), articles=("b", "c"), outlets=("B", "C"), quotes=("q2",)),
        ),
        first_seen=T0,
        last_seen=T0 + timedelta(hours=2),
    )


def _every_doc(published: datetime | None = T0) -> list[dict]:
    linked = _linked(published)
    return [
        article_doc(linked, T0, index="p-articles"),
        *claim_docs(linked, index="p-claims"),
        story_doc(Story(id="story-9", title="T", articles=("a",), first_seen=published, last_seen=published), index="p-stories"),
        contradiction_doc(_contradiction(), index="p-contradictions"),
        alert_doc(AlertRecord(id="al", contradiction="c", story="s", kind="new", status="pending", channel="slack", created=published), index="p-alerts"),
    ]


def test_ids_are_the_values_ids_and_deterministic() -> None:
    docs = _every_doc()
    assert [d["_id"] for d in docs] == [
        "art-1",
        stable_id("art-1", "0"),
        stable_id("art-1", "1"),
        "story-9",
        stable_id("story-9", "numeric", "detained:person@main"),
        "al",
    ]
    assert _every_doc() == docs  # same input, same documents
    assert all(d["_op_type"] == "index" for d in docs)
    assert [d["_index"] for d in docs] == ["p-articles", "p-claims", "p-claims", "p-stories", "p-contradictions", "p-alerts"]


def test_claim_docs_take_the_story_from_the_link_and_render_values() -> None:
    docs = claim_docs(_linked(hi=None), index="c")
    assert {d["_source"]["story"] for d in docs} == {"story-9"}
    count, slot = (d["_source"] for d in docs)
    assert (count["value_lo"], count["value_hi"], count["value"]) == (14, None, ">= 14")
    assert (slot["value"], slot["value_lo"]) == ("PMF security branch", None)
    assert count["outlet"] == "Wire A"


def test_article_doc_dedupes_entities_in_order() -> None:
    src = article_doc(_linked(), T0, index="a")["_source"]
    assert src["entities"] == ["Kataib Hezbollah"]
    assert src["entity_labels"] == ["ORG", "PERSON"]
    assert src["claim_count"] == 2 and src["story"] == "story-9"


def test_contradiction_doc_flattens_sides() -> None:
    src = contradiction_doc(_contradiction(), index="c")["_source"]
    assert src["side_values"] == ["14", ">= 23"]
    assert src["side_outlets"] == ["A", "B", "C"] and src["outlet_count"] == 3
    assert src["articles"] == ["a", "b", "c"]
    assert src["sides"][1]["hi"] is None and src["sides"][1]["lo"] == 23
    assert src["summary"] == "numeric about detained:person@main: 14 vs >= 23"


def test_every_source_field_is_mapped_by_its_template() -> None:
    """dynamic: false would silently make an unmapped field unsearchable: keep the two in step."""
    for doc in _every_doc():
        name = doc["_index"].removeprefix("p-")
        assert name in INDEX_NAMES
        mapped = load_template(name, "p")["template"]["mappings"]["properties"]
        assert set(doc["_source"]) <= set(mapped), set(doc["_source"]) - set(mapped)
        for key, value in doc["_source"].items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                assert set(value[0]) <= set(mapped[key]["properties"])


def test_naive_datetimes_are_marked_utc() -> None:
    assert iso(datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00+00:00"
    assert iso(datetime(2024, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=3)))) == "2024-01-02T03:04:00+03:00"
    assert iso(None) is None


@given(
    published=st.one_of(st.none(), st.datetimes(), st.datetimes(timezones=st.just(UTC))),
)
def test_documents_are_json_serialisable(published: datetime | None) -> None:
    docs = _every_doc(published)
    for doc in docs:
        assert json.loads(json.dumps(doc["_source"])) == doc["_source"]


@given(lo=st.integers(min_value=0, max_value=10**6), width=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)))
def test_display_interval(lo: int, width: int | None) -> None:
    hi = None if width is None else lo + width
    shown = display_interval(Interval(lo=lo, hi=hi))
    if hi is None:
        assert shown == f">= {lo}"
    elif width == 0:
        assert shown == str(lo)
    else:
        assert shown == f"{lo}-{hi}"
