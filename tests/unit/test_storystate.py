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


def test_state_stays_bounded_however_many_copies_arrive():
    from pipeline import storystate

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, _ = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0)
    sizes = {}
    for i in range(2 * storystate.RECENT_ARTICLES + 50):
        outlet, source, value = (("Reuters", "police", 14), ("AP", "a PMF official", 19))[i % 2]
        rec, events = apply(rec, _linked(f"copy-{i}", value, source, outlet), T0 + timedelta(seconds=i))
        if i >= 2 * storystate.REPORTS_PER_KEY:
            assert events == []  # repeats of reports held often enough change no contradiction
        if i in (storystate.RECENT_ARTICLES + 10, 2 * storystate.RECENT_ARTICLES + 49):
            sizes[i] = len(rec.model_dump_json())
    story = rec.story()
    assert story.size == 2 * storystate.RECENT_ARTICLES + 52  # every article is counted
    assert len(story.articles) == storystate.RECENT_ARTICLES
    assert len(rec.claims) == 2 * storystate.REPORTS_PER_KEY
    first, last = sizes.values()
    assert last <= first * 1.05, sizes  # the changelog message no longer grows with the story


def test_a_new_value_or_source_is_kept_after_many_copies():
    from pipeline import storystate

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, _ = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0)
    for i in range(3 * storystate.REPORTS_PER_KEY):
        rec, _ = apply(rec, _linked(f"copy-{i}", 14, "police", "Reuters"), T0)
    rec, events = apply(rec, _linked("c", 23, "a government official", "AFP"), T0 + timedelta(minutes=5))
    assert [k for k, _ in events] == ["update"]
    assert {s.value for s in events[0][1].sides} == {"14", "19", "23"}
    # a known value from a new outlet is a new source on its side
    rec, events = apply(rec, _linked("d", 14, "police", "BBC"), T0 + timedelta(minutes=6))
    side = next(s for s in events[0][1].sides if s.value == "14")
    assert "BBC" in side.outlets


def test_an_old_article_replayed_after_the_window_keeps_its_claims_idempotent():
    from pipeline import storystate

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    for i in range(storystate.RECENT_ARTICLES + 5):
        rec, _ = apply(rec, _linked(f"x-{i}", 14, "police", "Reuters"), T0)
    # "a" left the recent window but its claim is kept, so it is still known
    again, events = apply(rec, _linked("a", 14, "police", "Reuters"), T0)
    assert again == rec and events == []


def test_claims_stay_bounded_with_many_outlets_and_many_values():
    from pipeline import storystate

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    for i in range(40):  # forty outlets repeat the police figure
        rec, _ = apply(rec, _linked(f"o-{i}", 14, "police", f"Outlet {i}"), T0)
    assert sum(c.value.lo == 14 for c in rec.claims) == storystate.REPORTS_PER_VALUE
    for i in range(storystate.HARD_MAX_CLAIMS + 50):  # a stream where every report has a new figure
        rec, _ = apply(rec, _linked(f"v-{i}", 100 + i, "police", f"Outlet {i}"), T0)
    assert storystate.MAX_CLAIMS <= len(rec.claims) <= storystate.HARD_MAX_CLAIMS
    assert rec.story().size == 1 + 40 + storystate.HARD_MAX_CLAIMS + 50


def test_a_revision_is_kept_though_its_value_was_reported_many_times():
    """"The toll rose to 19" is not a repeat of "19 detained": it is what makes the lower figure
    an update rather than a side, so it must survive the repeat bounds."""
    from pipeline import storystate

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    for i in range(storystate.REPORTS_PER_KEY + storystate.REPORTS_PER_VALUE):
        rec, _ = apply(rec, _linked(f"copy-{i}", 19, "police", "Reuters"), T0)
    before = len(rec.claims)
    plain = _linked("plain", 19, "police", "Reuters")
    rec2, _ = apply(rec, plain, T0)
    assert len(rec2.claims) == before  # a plain repeat is dropped
    revised = _linked("rev", 19, "police", "Reuters")
    claim = revised.analysed.claims[0].model_copy(update={"revision": True})
    revised = revised.model_copy(update={"analysed": revised.analysed.model_copy(update={"claims": (claim,)})})
    rec3, _ = apply(rec, revised, T0)
    assert any(c.revision for c in rec3.claims) and len(rec3.claims) == before + 1


def test_table_bytes_read_back_both_the_new_and_the_old_changelog_form():
    """The worker's table holds ``model_dump_json()`` bytes; a changelog written by an older
    version holds faust's json-codec bytes of ``model_dump(mode="json")``. Both read back equal."""
    import json

    rec, _ = apply(None, _linked("a", 14, "police", "Reuters"), T0)
    rec, _ = apply(rec, _linked("b", 19, "a PMF official", "AP"), T0 + timedelta(minutes=1))
    assert rec.contradictions
    new = rec.model_dump_json().encode()
    old = json.dumps(rec.model_dump(mode="json")).encode()
    assert StoryRecord.model_validate_json(new) == rec
    assert StoryRecord.model_validate_json(old) == rec
    assert len(new) <= len(old)


def test_one_article_adds_at_most_its_first_claims_to_the_story():
    """A report of hundreds of casualty lines (1,241 claims in one) made a story record over
    Kafka's message limit: the story keeps the article's first MAX_ARTICLE_CLAIMS."""
    from pipeline.storystate import MAX_ARTICLE_CLAIMS

    one = _linked("a1", 1, "police", "Outlet")
    claims = tuple(
        one.analysed.claims[0].model_copy(update={"id": f"c{i}", "value": Interval(lo=i, hi=i), "source": f"official {i}",
                                                   "start": 40 * i, "end": 40 * i + 30})
        for i in range(3 * MAX_ARTICLE_CLAIMS)
    )
    many = one.model_copy(update={"analysed": one.analysed.model_copy(update={"claims": claims})})
    record, _ = apply(None, many, T0)
    assert [c.id for c in record.claims] == [f"c{i}" for i in range(MAX_ARTICLE_CLAIMS)]
