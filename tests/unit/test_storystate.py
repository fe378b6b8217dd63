from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.storystate import StoryRecord, apply
from pipeline.types import AnalysedArticle, Article, Claim, Entity, Interval, LinkDecision, LinkedArticle

T0 = datetime(2020, 6, 26, tzinfo=timezone.utc)


def _linked(aid: str, value: float, source: str, outlet: str, dup: str | None = None) -> LinkedArticle:
    claim = Claim(
        id=f"c-{aid}", article_id=aid, predicate="detained", theme="people", event="main", kind="count",
        value=Interval(lo=value, hi=value), source=source, source_kind="attributed",
        sentence=f"{source} said {value:g} were detained.", start=0, end=30,
    )
    art = Article(id=aid, text="x", source=outlet)
    analysed = AnalysedArticle(article=art, clean_text="x", title=f"title {aid}", language="en", words=1,
                               entities=(Entity(text="Baghdad", label="GPE", canonical="Baghdad", start=0, end=7),),
                               claims=(claim,))
    return LinkedArticle(analysed=analysed, link=LinkDecision(story="s1", is_new=False, score=0.9, duplicate_of=dup))


def test_apply_builds_story_and_reports_new_then_update():
    rec, events = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    assert rec.story().articles == ("a",) and events == []
    rec, events = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0 + timedelta(minutes=1))
    assert [k for k, _ in events] == ["new"]
    c = events[0][1]
    assert {s.value for s in c.sides} == {"14", "19"}
    rec, events = apply(rec, _linked("c", 23, "a government official", "AFP"), T0 + timedelta(minutes=2))
    assert [k for k, _ in events] == ["update"] and events[0][1].version == 2 and events[0][1].id == c.id
    story = rec.story()
    assert story.size == 3 and story.outlets == ("AFP", "AP", "Reuters") and story.entities == ("Baghdad",)
    assert story.first_seen == T0 and story.last_seen == T0 + timedelta(minutes=2)


def test_apply_is_idempotent_for_a_replayed_article():
    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, _ = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0)
    again, events = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0 + timedelta(hours=1))
    assert again == rec and events == []


def test_record_round_trips_through_json():
    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, _ = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0)
    assert StoryRecord.model_validate(rec.model_dump(mode="json")) == rec
    assert StoryRecord.model_validate_json(rec.model_dump_json()) == rec


def test_a_duplicate_is_not_an_independent_side():
    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, events = apply(rec, _linked("a-copy", 19, "police", "Wire", dup="a"), T0)
    assert events == []  # the copy disagreeing with its own original is not a dispute between sources
