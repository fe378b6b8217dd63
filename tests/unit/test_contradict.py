from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contradict import (
    ArticleInfo,
    ContradictConfig,
    about_key,
    comparable,
    default_relation,
    denial_targets,
    diff,
    equal_relation,
    find_contradictions,
    group_by_about,
    has_marker,
    independent,
    is_revision,
    make_reports,
    numeric_pair_test,
    revisions_of,
    root_article,
    source_key,
    superseded_by_revision,
    witness_pairs,
)
from pipeline.intervals import compatible, sort_key
from pipeline.types import Claim, Contradiction, Interval, stable_id

STORY = "story-1"
T0 = datetime(2020, 6, 26, 0, 0, tzinfo=UTC)


def iv(lo: float, hi: float | None = -1.0, *, fuzzy: bool = False, hedge: str | None = None) -> Interval:
    """``iv(14)`` is exact, ``iv(13, None)`` is open above."""
    return Interval(lo=lo, hi=lo if hi == -1.0 else hi, fuzzy=fuzzy, hedge=hedge)


def mk(
    article: str,
    start: int,
    *,
    value: Interval | None = None,
    slot: str | None = None,
    predicate: str = "detained",
    theme: str = "people",
    event: str = "main",
    source: str | None = None,
    polarity: Literal["asserted", "denied"] = "asserted",
    modality: Literal["asserted", "reported", "hedged", "doubted"] = "asserted",
    sentence: str | None = None,
    denies: str | None = None,
    revision: bool = False,
) -> Claim:
    """A hand-made claim; ``source=None`` means the outlet's own voice."""
    kind: Literal["count", "slot"] = "slot" if slot is not None else "count"
    return Claim(
        id=stable_id(article, str(start), predicate, theme, str(value or slot), polarity),
        article_id=article,
        predicate=predicate,
        theme=theme,
        event=event,
        kind=kind,
        value=value,
        slot=slot,
        polarity=polarity,
        modality=modality,
        source=source or "the outlet",
        source_kind="attributed" if source else "outlet",
        sentence=sentence or f"sentence {start} of {article}",
        start=start,
        end=start + 10,
        denies=denies,
        revision=revision,
    )


def arts(*ids: str, dup: dict[str, str] | None = None, hours: dict[str, int] | None = None) -> dict[str, ArticleInfo]:
    """Articles seen one hour apart in the given order, outlet ``O-<id>``."""
    dup = dup or {}
    hours = hours or {}
    return {
        a: ArticleInfo(
            outlet=f"O-{a}",
            published=T0 + timedelta(hours=hours.get(a, i)),
            duplicate_of=dup.get(a),
            seen=T0 + timedelta(hours=hours.get(a, i), minutes=5),
        )
        for i, a in enumerate(ids)
    }


def only(cs: list[Contradiction], kind: str) -> list[Contradiction]:
    return [c for c in cs if c.kind == kind]


# --------------------------------------------------------------------------- rule 1: quantities


def test_about_key_and_grouping_by_event() -> None:
    a = mk("A", 0, predicate="attacks", theme="attacks", event="attacks@since october", value=iv(28.8, 36, fuzzy=True))
    b = mk("B", 0, predicate="attacks", theme="attacks", event="attacks@the past two weeks", value=iv(4, None))
    c = mk("C", 0, predicate="attacks", theme="attacks", event="attacks@the past two weeks", value=iv(6))
    assert about_key(a) == "attacks:attacks@attacks@since october"
    # 28.8-36 vs 6 would conflict if compared; different periods are never compared
    assert find_contradictions(STORY, [a, b, c], arts("A", "B", "C")) == []
    same_period = [a, c.model_copy(update={"event": a.event})]
    assert len(find_contradictions(STORY, same_period, arts("A", "C"))) == 1


def test_different_themes_are_different_quantities() -> None:
    claims = [mk("A", 0, value=iv(14)), mk("B", 0, theme="commanders", value=iv(3))]
    assert find_contradictions(STORY, claims, arts("A", "B")) == []


def test_lookalike_periods_overlap_even_if_keyed_together() -> None:
    # the guard behind the event key: "nearly three dozen" and "at least four" overlap
    a = mk("A", 0, predicate="attacks", theme="attacks", value=iv(28.8, 36, fuzzy=True, hedge="nearly"))
    b = mk("B", 0, predicate="attacks", theme="attacks", value=iv(4, None, hedge="at least"))
    assert find_contradictions(STORY, [a, b], arts("A", "B")) == []


# --------------------------------------------------------------------------- rule 2: numeric


def test_disjoint_counts_from_two_articles_conflict() -> None:
    claims = [mk("B", 0, value=iv(19)), mk("A", 0, value=iv(14))]
    [c] = find_contradictions(STORY, claims, arts("A", "B"))
    assert c.kind == "numeric"
    assert c.about == "detained:people@main"
    assert c.id == stable_id(STORY, "numeric", "detained:people@main")
    assert [s.value for s in c.sides] == ["14", "19"]
    assert [s.articles for s in c.sides] == [("A",), ("B",)]
    assert [s.outlets for s in c.sides] == [("O-A",), ("O-B",)]
    assert c.internal is False


def test_containment_and_overlap_do_not_alert() -> None:
    claims = [mk("A", 0, value=iv(13, None)), mk("B", 0, value=iv(14)), mk("C", 0, value=iv(10, 20))]
    assert find_contradictions(STORY, claims, arts("A", "B", "C")) == []


def test_same_figure_in_two_articles_is_one_value() -> None:
    troops = [
        mk("A", 0, predicate="troops", theme="troops", event="troops@last year", value=iv(5200)),
        mk("B", 0, predicate="troops", theme="troops", event="troops@last year", value=iv(5200)),
    ]
    assert find_contradictions(STORY, troops, arts("A", "B")) == []


def test_side_compatible_with_everyone_is_dropped_and_equal_values_merge() -> None:
    claims = [
        mk("A", 0, value=iv(13, None, hedge="more than")),
        mk("A", 50, value=iv(14)),
        mk("B", 0, value=iv(14)),
        mk("C", 0, value=iv(19), source="a PMF official"),
    ]
    [c] = find_contradictions(STORY, claims, arts("A", "B", "C"))
    assert [s.value for s in c.sides] == ["14", "19"]
    assert c.sides[0].articles == ("A", "B")
    assert len(c.sides[0].claim_ids) == 2
    assert c.sides[1].attributed_to == ("a PMF official",)


def test_hard_and_soft_conflicts_differ_in_confidence() -> None:
    hard = [mk("A", 0, value=iv(10)), mk("B", 0, value=iv(40))]
    soft = [mk("A", 0, value=iv(10)), mk("B", 0, value=iv(32, 40, fuzzy=True, hedge="about"))]
    [h] = find_contradictions(STORY, hard, arts("A", "B"))
    [s] = find_contradictions(STORY, soft, arts("A", "B"))
    assert s.sides[1].value == "~32-40"
    assert 0 < s.confidence < h.confidence <= 1


def test_zero_versus_at_least_one_is_numeric() -> None:
    claims = [
        mk("A", 0, predicate="nationality", theme="people:iranian", value=iv(1, None), source="a government official"),
        mk("A", 90, predicate="nationality", theme="people:iranian", value=iv(0), source="the PMF source"),
    ]
    [c] = find_contradictions(STORY, claims, arts("A"))
    assert c.kind == "numeric"
    assert [s.value for s in c.sides] == ["0", ">= 1"]
    assert c.internal is True


# --------------------------------------------------------------------------- rule 3: independence


def test_root_article_follows_duplicates_and_survives_cycles() -> None:
    articles = {"C": ArticleInfo(duplicate_of="B"), "B": ArticleInfo(duplicate_of="A"), "A": ArticleInfo()}
    assert root_article("C", articles) == "A"
    assert root_article("X", articles) == "X"
    cyc = {"P": ArticleInfo(duplicate_of="Q"), "Q": ArticleInfo(duplicate_of="P")}
    assert root_article("P", cyc) == root_article("Q", cyc)


def test_duplicate_copy_is_not_an_independent_report() -> None:
    # B is a garbled copy of A: its "15" is not a second outlet disagreeing with A's "14"
    claims = [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(15))]
    assert find_contradictions(STORY, claims, arts("A", "B", dup={"B": "A"})) == []
    assert len(find_contradictions(STORY, claims, arts("A", "B"))) == 1


def test_two_sources_in_one_article_are_independent() -> None:
    claims = [
        mk("A", 0, value=iv(19), source="A PMF official"),
        mk("A", 40, value=iv(23), source="A government official"),
    ]
    [c] = find_contradictions(STORY, claims, arts("A"))
    assert c.internal is True
    assert [s.attributed_to for s in c.sides] == [("A PMF official",), ("A government official",)]


def test_one_source_repeating_itself_differently_is_not_a_dispute() -> None:
    claims = [mk("A", 0, value=iv(19), source="a PMF source"), mk("A", 40, value=iv(23), source="The PMF source")]
    assert source_key(claims[0]) == source_key(claims[1])
    assert find_contradictions(STORY, claims, arts("A")) == []


def test_independent_reports() -> None:
    claims = [mk("A", 0, value=iv(1)), mk("A", 5, value=iv(2), source="police"), mk("B", 0, value=iv(3))]
    ra, rp, rb = make_reports(claims, arts("A", "B", dup={"B": "A"}))
    assert independent(ra, rp)
    assert not independent(ra, rb)  # B's outlet voice is A's outlet voice


def test_internal_dispute_has_lower_confidence_than_cross_article() -> None:
    inside = [mk("A", 0, value=iv(19), source="x official"), mk("A", 9, value=iv(23), source="y official")]
    across = [mk("A", 0, value=iv(19), source="x official"), mk("B", 9, value=iv(23), source="y official")]
    [i] = find_contradictions(STORY, inside, arts("A", "B"))
    [a] = find_contradictions(STORY, across, arts("A", "B"))
    assert i.internal and not a.internal
    assert i.confidence < a.confidence


def test_more_independent_outlets_raise_confidence() -> None:
    base = [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19))]
    more = base + [mk("C", 0, value=iv(14)), mk("D", 0, value=iv(19))]
    dup_only = base + [mk("C", 0, value=iv(14))]
    [b] = find_contradictions(STORY, base, arts("A", "B", "C", "D"))
    [m] = find_contradictions(STORY, more, arts("A", "B", "C", "D"))
    [d] = find_contradictions(STORY, dup_only, arts("A", "B", "C", dup={"C": "A"}))
    assert m.confidence > b.confidence
    assert d.confidence == b.confidence  # a copy adds an article to the side, not support
    assert d.sides[0].articles == ("A", "C")


# --------------------------------------------------------------------------- rule 4: denials


def test_denial_of_a_resolved_claim() -> None:
    target = mk("A", 0, predicate="released", value=iv(5), source="police")
    denial = mk("A", 30, predicate="released", polarity="denied", source="the militia", denies=target.id)
    [c] = find_contradictions(STORY, [target, denial], arts("A"))
    assert c.kind == "denial"
    assert [s.value for s in c.sides] == ["5", "denied"]
    assert c.sides[1].attributed_to == ("the militia",)
    assert c.internal is True


def test_generic_denial_matches_only_in_its_own_article() -> None:
    target_a = mk("A", 0, predicate="released", value=iv(5), source="police")
    target_b = mk("B", 0, predicate="released", value=iv(5), source="police")
    generic = mk("B", 30, predicate="released", polarity="denied", source="the militia")
    other_article = find_contradictions(STORY, [target_a, generic], arts("A", "B"))
    assert other_article == []  # the prototype's false positive
    [c] = find_contradictions(STORY, [target_a, target_b, generic], arts("A", "B"))
    assert c.sides[0].articles == ("B",)


def test_generic_denial_needs_an_earlier_claim_by_someone_else() -> None:
    later = mk("A", 90, predicate="released", value=iv(5), source="police")
    own = mk("A", 0, predicate="released", value=iv(5), source="the militia")
    denial = mk("A", 30, predicate="released", polarity="denied", source="the militia")
    reports = make_reports([later, own, denial], arts("A"))
    d = next(r for r in reports if r.claim.id == denial.id)
    assert denial_targets(d, reports, ContradictConfig()) == []


def test_denial_with_counter_figure_is_left_to_the_numeric_rule() -> None:
    official = mk("A", 0, theme="commanders", value=iv(3), source="a government official")
    denial = mk("A", 50, theme="commanders", polarity="denied", source="the PMF source", denies=official.id)
    zero = mk("A", 50, theme="commanders", value=iv(0), source="the PMF source")
    cs = find_contradictions(STORY, [official, denial, zero], arts("A"))
    assert [c.kind for c in cs] == ["numeric"]
    assert only(find_contradictions(STORY, [official, denial], arts("A")), "denial")


# --------------------------------------------------------------------------- rule 5: exclusive slots


def custody(article: str, start: int, slot: str, **kw: object) -> Claim:
    return mk(article, start, predicate="custody", slot=slot, **kw)  # type: ignore[arg-type]


def test_different_holders_conflict() -> None:
    claims = [custody("A", 0, "security branch of the PMF", source="PMF sources"), custody("B", 0, "U.S. military")]
    [c] = find_contradictions(STORY, claims, arts("A", "B"))
    assert c.kind == "exclusive"
    assert c.about == "custody:people@main"
    assert [s.value for s in c.sides] == ["security branch of the PMF", "U.S. military"]


def test_related_holders_do_not_conflict() -> None:
    def rel(a: str, b: str) -> Literal["same", "part_of", "contains", "different"]:
        return "part_of" if {a, b} == {"security branch of the PMF", "PMF"} else "different"

    claims = [custody("A", 0, "security branch of the PMF"), custody("B", 0, "PMF")]
    assert find_contradictions(STORY, claims, arts("A", "B"), config=ContradictConfig(relation=rel)) == []
    equality_only = ContradictConfig(relation=equal_relation)
    assert len(find_contradictions(STORY, claims, arts("A", "B"), config=equality_only)) == 1


def test_default_relation_uses_the_alias_table() -> None:
    aliases = pytest.importorskip("pipeline.aliases")
    table = aliases.AliasTable.from_entries([{"name": "Popular Mobilization Forces", "label": "ORG", "aliases": ["PMF"]}])
    claims = [custody("A", 0, "PMF"), custody("B", 0, "Popular Mobilization Forces")]
    assert find_contradictions(STORY, claims, arts("A", "B"), config=ContradictConfig(relation=table.relation)) == []
    assert len(find_contradictions(STORY, claims, arts("A", "B"), config=ContradictConfig(relation=equal_relation))) == 1
    # the default config resolves the configured table (or equality when there is none)
    assert ContradictConfig().slot_relation() is default_relation()


def test_alias_relation_merges_sides() -> None:
    def rel(a: str, b: str) -> Literal["same", "part_of", "contains", "different"]:
        return "same" if {a, b} == {"PMF", "Popular Mobilization Forces"} else "different"

    claims = [custody("A", 0, "PMF"), custody("B", 0, "Popular Mobilization Forces"), custody("C", 0, "CTS")]
    [c] = find_contradictions(STORY, claims, arts("A", "B", "C"), config=ContradictConfig(relation=rel))
    assert len(c.sides) == 2
    assert {a for s in c.sides for a in s.articles} == {"A", "B", "C"}


def test_stated_sequence_in_one_article_is_not_a_conflict() -> None:
    first = custody("A", 0, "CTS", sentence="The men were held by the CTS.")
    then = custody("A", 40, "U.S. military", source="an official", sentence="They were later handed to the U.S. military.")
    assert find_contradictions(STORY, [first, then], arts("A")) == []
    # a marker in another article's sentence orders nothing
    elsewhere = then.model_copy(update={"article_id": "B"})
    assert len(find_contradictions(STORY, [first, elsewhere], arts("A", "B"))) == 1


def test_doubt_and_denial_join_the_custody_dispute() -> None:
    handed = custody("C", 0, "U.S. military", source="the official")
    doubted = custody("C", 40, "unspecified", source="a coalition spokesman", modality="doubted")
    sent = custody("A", 0, "security branch of the PMF", source="paramilitary sources")
    denied = custody("A", 30, "security branch of the PMF", polarity="denied", source="a second official", denies=sent.id)
    [c] = find_contradictions(STORY, [handed, doubted, sent, denied], arts("A", "C"))
    assert c.kind == "exclusive"
    assert [s.value for s in c.sides] == ["security branch of the PMF", "U.S. military", "denied", "doubted"]
    assert c.sides[3].attributed_to == ("a coalition spokesman",)
    # the doubt alone is still the same dispute (same id), as a one-article denial
    [alone] = find_contradictions(STORY, [handed, doubted], arts("C"))
    assert alone.id == c.id
    assert alone.internal is True


def test_same_source_two_holders_is_not_a_dispute() -> None:
    claims = [custody("A", 0, "CTS", source="an official"), custody("A", 40, "army", source="the official")]
    assert find_contradictions(STORY, claims, arts("A")) == []


# --------------------------------------------------------------------------- rule 6: revisions


def test_later_larger_death_toll_is_an_update() -> None:
    claims = [mk("A", 0, predicate="killed", value=iv(250)), mk("B", 0, predicate="killed", value=iv(300))]
    assert find_contradictions(STORY, claims, arts("A", "B")) == []
    # the same figures published the other way round: the toll went down
    [c] = find_contradictions(STORY, claims, arts("A", "B", hours={"A": 5, "B": 1}))
    assert [s.value for s in c.sides] == ["250", "300"]


def test_detained_needs_a_revision_marker() -> None:
    first = mk("A", 0, value=iv(14))
    plain = mk("B", 0, value=iv(19), sentence="Police said 19 were detained.")
    rose = mk("B", 0, value=iv(19), sentence="The number of detainees rose to 19.")
    assert len(find_contradictions(STORY, [first, plain], arts("A", "B"))) == 1
    assert find_contradictions(STORY, [first, rose], arts("A", "B")) == []


def test_revision_inside_one_article_needs_a_marker() -> None:
    a = mk("A", 0, predicate="killed", value=iv(10), source="police")
    b = mk("A", 50, predicate="killed", value=iv(15), source="hospital officials")
    assert len(find_contradictions(STORY, [a, b], arts("A"))) == 1  # two sources at once: a dispute
    b2 = b.model_copy(update={"sentence": "The toll has now risen to 15."})
    assert find_contradictions(STORY, [a, b2], arts("A")) == []


def test_is_revision_needs_a_known_order_and_a_monotone_predicate() -> None:
    cfg = ContradictConfig()
    no_time = {"A": ArticleInfo(), "B": ArticleInfo()}
    ra, rb = make_reports([mk("A", 0, predicate="killed", value=iv(1)), mk("B", 0, predicate="killed", value=iv(9))], no_time)
    assert not is_revision(ra, rb, cfg)
    at = [
        mk("A", 0, predicate="attacks", theme="attacks", value=iv(1)),
        mk("B", 0, predicate="attacks", theme="attacks", value=iv(9), sentence="Attacks rose to 9."),
    ]
    ra, rb = make_reports(at, arts("A", "B"))
    assert not is_revision(ra, rb, cfg)
    assert is_revision(ra, rb, ContradictConfig(monotone_predicates=frozenset({"attacks"})))


# --------------------------------------------------------------------------- rule 6a: explicit revisions

UNDATED = {a: ArticleInfo(outlet=f"O-{a}") for a in "ABCDEF"}


def _dead(article: str, value: Interval, *, start: int = 0, revision: bool = False, source: str | None = None,
            modality: Literal["asserted", "reported", "hedged", "doubted"] = "asserted") -> Claim:
    return mk(article, start, predicate="killed", value=value, revision=revision, source=source, modality=modality,
              sentence=f"{'The toll rose to' if revision else 'Officials said'} {value.lo:g} ({article}).")


def test_explicit_revision_supersedes_a_lower_undated_figure() -> None:
    """A flood: an early wire says 4 dead, a later outlet says the toll rose to 11, others say 11.
    No times are known: the revision itself says the count was lower before."""
    early, rose, plain = _dead("A", iv(4)), _dead("B", iv(11), revision=True), _dead("C", iv(11))
    assert len(find_contradictions(STORY, [early, plain], UNDATED)) == 1  # without the revision: a dispute
    assert find_contradictions(STORY, [early, rose, plain], UNDATED) == []
    # "at least 11" agrees with the revision too
    assert find_contradictions(STORY, [early, rose, _dead("D", iv(11, None))], UNDATED) == []


def test_revision_settles_nothing_when_it_agrees_with_neither_side() -> None:
    """14 vs 19 at the same time, then "the toll climbed to 23": the dispute stands."""
    a, b = _dead("A", iv(14), source="police"), _dead("B", iv(19), source="hospital director")
    later = _dead("C", iv(23), revision=True)
    [c] = find_contradictions(STORY, [a, b, later], UNDATED)
    assert [s.value for s in c.sides] == ["14", "19"]


def test_lower_figure_published_after_the_revision_is_a_fall() -> None:
    rose, late = _dead("A", iv(11), revision=True), _dead("B", iv(4))
    plain = _dead("C", iv(11))
    # B published after the revision: a monotone count went down, still a contradiction
    [c] = find_contradictions(STORY, [rose, late, plain], arts("A", "C", "B"))
    assert "4" in [s.value for s in c.sides]
    # B published before it: superseded
    assert find_contradictions(STORY, [rose, late, plain], arts("B", "A", "C")) == []


def test_arrival_order_does_not_make_an_early_figure_a_fall() -> None:
    """Undated articles arriving in any order (a feed delivering late, a replay): ``seen`` alone
    never says the low figure came after the revision."""
    rose, early, plain = _dead("A", iv(11), revision=True), _dead("B", iv(4)), _dead("C", iv(11))
    seen_only = {a: ArticleInfo(outlet=f"O-{a}", seen=T0 + timedelta(hours=i)) for i, a in enumerate("ACB")}
    assert find_contradictions(STORY, [rose, early, plain], seen_only) == []


def test_revision_inside_one_article_orders_by_text() -> None:
    rose = _dead("A", iv(11), start=0, revision=True, source="the governor")
    after = _dead("A", iv(4), start=80, source="a hospital official")
    other = _dead("B", iv(11))
    [c] = find_contradictions(STORY, [rose, after, other], UNDATED)  # said after the revision: a dispute
    assert [s.value for s in c.sides] == ["4", "11"]
    before = after.model_copy(update={"start": 0, "end": 10, "id": "x"})
    rose2 = rose.model_copy(update={"start": 80, "end": 90})
    assert find_contradictions(STORY, [before, rose2, other], UNDATED) == []


def test_superseded_by_revision_needs_a_monotone_predicate_and_an_unhedged_assertion() -> None:
    cfg = ContradictConfig()
    low, high = make_reports([_dead("A", iv(4)), _dead("B", iv(11))], UNDATED)
    (rev,) = make_reports([_dead("C", iv(11), revision=True)], UNDATED)
    assert superseded_by_revision(low, high, [rev], cfg) and superseded_by_revision(high, low, [rev], cfg)
    assert not superseded_by_revision(low, high, [], cfg)
    # the revision must go past the low figure
    (small,) = make_reports([_dead("C", iv(3), revision=True)], UNDATED)
    assert not superseded_by_revision(low, high, [small], cfg)
    # attacks are not monotone by default
    at = [mk(a, 0, predicate="attacks", theme="attacks", value=iv(v), revision=a == "C") for a, v in
          (("A", 4), ("B", 11), ("C", 11))]
    ra, rb, rc = make_reports(at, UNDATED)
    assert not superseded_by_revision(ra, rb, [rc], cfg)
    # a forecast-like hedged revision, or a denied one, is no revision
    hedged = make_reports([_dead("C", iv(11), revision=True, modality="hedged")], UNDATED)
    assert revisions_of(hedged) == []
    assert len(find_contradictions(STORY, [_dead("A", iv(4)), _dead("B", iv(11)),
                                           _dead("C", iv(11), revision=True, modality="hedged")], UNDATED)) == 1


# --------------------------------------------------------------------------- rule 8: times


def test_first_seen_is_when_the_dispute_began_and_last_seen_the_latest_side() -> None:
    claims = [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(14)), mk("C", 0, value=iv(19)), mk("D", 0, value=iv(14))]
    articles = arts("A", "B", "C", "D")
    [c] = find_contradictions(STORY, claims, articles)
    assert c.first_seen == articles["C"].seen
    assert c.last_seen == articles["D"].seen


def test_now_stands_in_for_unknown_times() -> None:
    claims = [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19))]
    now = T0 + timedelta(days=1)
    [c] = find_contradictions(STORY, claims, {}, now=now)
    assert c.first_seen == now and c.last_seen == now
    [c2] = find_contradictions(STORY, claims, {})
    assert c2.first_seen is None


# --------------------------------------------------------------------------- diff and ids


def test_diff_new_update_and_unchanged() -> None:
    articles = arts("A", "B", "C", "D")
    first = find_contradictions(STORY, [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19))], articles)
    [(tag, c1)] = diff([], first)
    assert tag == "new" and c1.version == 1
    assert diff(first, first) == []

    grown = find_contradictions(
        STORY, [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19)), mk("C", 0, value=iv(23))], articles
    )
    [(tag, c2)] = diff(first, grown)
    assert tag == "update"
    assert c2.id == c1.id
    assert c2.version == 2
    assert c2.first_seen == c1.first_seen
    assert len(c2.sides) == 3

    # a new source on an existing side is an update too; a later run compares with the stored copy
    more = find_contradictions(
        STORY,
        [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19)), mk("C", 0, value=iv(23)), mk("D", 0, value=iv(14))],
        articles,
    )
    [(tag, c3)] = diff([c2], more)
    assert tag == "update" and c3.version == 3

    # losing a side is not alerted
    assert diff([c2], first) == []


def test_diff_reports_a_second_dispute_as_new() -> None:
    articles = arts("A", "B")
    old = find_contradictions(STORY, [mk("A", 0, value=iv(14)), mk("B", 0, value=iv(19))], articles)
    new_claims = [
        mk("A", 0, value=iv(14)),
        mk("B", 0, value=iv(19)),
        mk("A", 9, theme="commanders", value=iv(3)),
        mk("B", 9, theme="commanders", value=iv(0)),
    ]
    changes = diff(old, find_contradictions(STORY, new_claims, articles))
    assert [(t, c.about) for t, c in changes] == [("new", "detained:commanders@main")]


_POOL = [
    mk("A", 0, value=iv(14)),
    mk("B", 0, value=iv(19), source="a PMF source"),
    mk("B", 30, value=iv(23), source="a government official"),
    mk("C", 0, value=iv(13, None)),
    mk("C", 10, predicate="custody", slot="U.S. military", source="an official"),
    mk("C", 20, predicate="custody", slot="unspecified", source="a spokesman", modality="doubted"),
    mk("A", 10, predicate="custody", slot="PMF"),
    mk("D", 0, predicate="killed", value=iv(10)),
    mk("E", 0, predicate="killed", value=iv(5)),
]


@settings(max_examples=40, deadline=None)
@given(st.permutations(_POOL), st.booleans())
def test_output_is_independent_of_claim_order_and_replay(claims: list[Claim], doubled: bool) -> None:
    articles = arts("A", "B", "C", "D", "E")
    expected = find_contradictions(STORY, _POOL, articles)
    got = find_contradictions(STORY, claims + (claims if doubled else []), articles)
    assert got == expected
    assert all(0 <= c.confidence <= 1 for c in got)
    assert len({c.id for c in got}) == len(got)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCD"), st.integers(0, 40), st.booleans()), min_size=2, max_size=8))
def test_no_contradiction_when_all_values_overlap(rows: list[tuple[str, int, bool]]) -> None:
    # every claim is "at least n" with n small, or a value above all of them: all pairs intersect
    top = max(n for _, n, _ in rows)
    claims = [
        mk(a, i, value=iv(n, None) if open_ else iv(top), source=f"s{i}") for i, (a, n, open_) in enumerate(rows)
    ]
    assert find_contradictions(STORY, claims, arts("A", "B", "C", "D")) == []


# --------------------------------------------------------------------------- the seed story


def _seed_claims() -> list[Claim]:
    """Hand-made claims mirroring the gold reading of the five seed articles."""
    a0, a1, a2, a3, a4 = "000", "001", "002", "003", "004"
    return [
        # 000 (AFP)
        mk(a0, 0, value=iv(13, None, hedge="more than"), sentence="Iraqi security forces arrested more than a dozen pro-Iran fighters overnight."),
        custody(a0, 100, "security branch of the PMF", source="The paramilitary sources and one government official",
                sentence="The paramilitary sources and one government official said those detained were transferred shortly afterward to the security branch of the PMF."),
        custody(a0, 200, "security branch of the PMF", polarity="denied", source="A second government official",
                sentence="A second government official denied any such transfer and said the militiamen were still in the custody of other security services."),
        custody(a0, 200, "other security services", source="A second government official",
                sentence="A second government official denied any such transfer and said the militiamen were still in the custody of other security services."),
        mk(a0, 300, value=iv(19), source="A PMF official", sentence="A PMF official said it was 19."),
        mk(a0, 330, value=iv(23), source="A government official", sentence="A government official said it was 23."),
        mk(a0, 400, predicate="attacks", theme="attacks", event="attacks@october", value=iv(28.8, 36, fuzzy=True, hedge="nearly")),
        mk(a0, 500, predicate="attacks", theme="attacks", event="attacks@the last two weeks", value=iv(6)),
        mk(a0, 600, predicate="troops", theme="troops", event="troops@last year", value=iv(5200)),
        # 001 (Reuters, reworded)
        mk(a1, 0, value=iv(13, None, hedge="more than"), source="government officials and paramilitary sources"),
        mk(a1, 100, value=iv(14), source="he", sentence="Iraqi authorities were questioning the 14 men detained during the raid, he said."),
        custody(a1, 200, "security branch of the PMF", source="Paramilitary sources and a government official"),
        custody(a1, 300, "unspecified", polarity="denied", source="A second government official"),
        custody(a1, 300, "other security services", source="A second government official"),
        mk(a1, 350, value=iv(19), source="A PMF source", modality="reported", sentence="A PMF source initially said 19 men had been detained."),
        mk(a1, 400, theme="commanders", value=iv(3), source="A government official"),
        mk(a1, 450, predicate="nationality", theme="people:iranian", value=iv(1, None), source="he"),
        mk(a1, 500, predicate="nationality", theme="people:iranian", polarity="denied", source="The PMF source",
           denies=stable_id(a1, "450", "nationality", "people:iranian", str(iv(1, None)), "asserted")),
        mk(a1, 500, theme="commanders", value=iv(0), source="The PMF source"),
        mk(a1, 500, predicate="nationality", theme="people:iranian", value=iv(0), source="The PMF source"),
        # 002 (NYT, reworded)
        mk(a2, 0, predicate="attacks", theme="attacks", event="attacks@the past two weeks", value=iv(4, None, hedge="at least")),
        mk(a2, 100, value=iv(14), sentence="Iraqi counterterrorism forces detained 14 members of the militia."),
        # 003 (Reuters)
        mk(a3, 0, theme="commanders", value=iv(3), source="two Iraqi government officials"),
        mk(a3, 100, predicate="nationality", theme="people:iranian", value=iv(1, None), source="One of the government officials"),
        custody(a3, 200, "U.S. military", source="The official"),
        custody(a3, 250, "unspecified", source="A spokesman for the U.S.-led coalition", modality="doubted"),
        mk(a3, 300, value=iv(23, None, hedge="at least"), source="The Iraqi official"),
        # 004 (PDF reprint of 002)
        mk(a4, 0, predicate="attacks", theme="attacks", event="attacks@october", value=iv(28.8, 36, fuzzy=True, hedge="nearly")),
        mk(a4, 100, value=iv(14)),
        mk(a4, 200, predicate="attacks", theme="attacks", event="attacks@the past two weeks", value=iv(4, None, hedge="at least")),
        mk(a4, 300, predicate="troops", theme="troops", event="troops@last year", value=iv(5200)),
    ]


def test_seed_story() -> None:
    articles = arts("000", "001", "002", "003", "004", dup={"004": "002"})
    cs = find_contradictions(STORY, _seed_claims(), articles)
    by_about = {(c.kind, c.about): c for c in cs}
    assert set(by_about) == {
        ("numeric", "detained:people@main"),
        ("numeric", "detained:commanders@main"),
        ("numeric", "nationality:people:iranian@main"),
        ("exclusive", "custody:people@main"),
    }

    detained = by_about[("numeric", "detained:people@main")]
    assert [s.value for s in detained.sides] == ["14", "19", "23", ">= 23"]
    assert [s.articles for s in detained.sides] == [("001", "002", "004"), ("000", "001"), ("000",), ("003",)]
    assert detained.sides[2].attributed_to == ("A government official",)
    assert not detained.internal
    assert detained.first_seen == articles["000"].seen  # 000 alone disputes 19 vs 23
    assert detained.last_seen == articles["004"].seen

    custody_c = by_about[("exclusive", "custody:people@main")]
    assert [s.value for s in custody_c.sides] == [
        "other security services",
        "security branch of the PMF",
        "U.S. military",
        "denied",
        "doubted",
    ]
    assert custody_c.sides[3].articles == ("000", "001")
    assert custody_c.sides[4].articles == ("003",)

    commanders = by_about[("numeric", "detained:commanders@main")]
    assert [s.value for s in commanders.sides] == ["0", "3"]
    assert commanders.sides[1].articles == ("001", "003")

    # no alert on attacks over different periods, nor on the troop figure
    assert not any(c.about.startswith(("attacks", "troops")) for c in cs)


# --------------------------------------------------------------------------- witnesses, records, properties


def test_first_seen_skips_pairs_that_are_not_independent() -> None:
    claims = [mk("A", 0, value=iv(19)), mk("B", 0, value=iv(14)), mk("C", 0, value=iv(14))]
    articles = arts("A", "B", "C", dup={"B": "A"})  # B is a copy of A: A-B is no dispute
    [c] = find_contradictions(STORY, claims, articles)
    assert c.first_seen == articles["C"].seen
    assert c.sides[0].articles == ("B", "C")


def test_witness_pairs_find_the_first_and_a_hard_pair() -> None:
    fuzzy_early = mk("A", 0, value=iv(30, 40, fuzzy=True, hedge="about"))
    ten = mk("B", 0, value=iv(10))
    firm_late = mk("C", 0, value=iv(30, 40, hedge="between"))
    reports = make_reports([fuzzy_early, ten, firm_late], arts("A", "B", "C"))
    left = [r for r in reports if r.claim.value and r.claim.value.lo == 10]
    right = [r for r in reports if r.claim.value and r.claim.value.lo == 30]
    pairs = witness_pairs(left, right, numeric_pair_test(ContradictConfig()))
    assert [(p.level, p.b.claim.article_id) for p in pairs] == [("soft", "A"), ("hard", "C")]
    assert witness_pairs(left, [], numeric_pair_test(ContradictConfig())) == []


def test_article_info_round_trips_json() -> None:
    info = ArticleInfo(outlet="Reuters", published=T0, duplicate_of="x", seen=T0 + timedelta(minutes=1))
    assert ArticleInfo.model_validate_json(info.model_dump_json()) == info
    for c in find_contradictions(STORY, _seed_claims(), arts("000", "001", "002", "003", "004", dup={"004": "002"})):
        assert Contradiction.model_validate_json(c.model_dump_json()) == c


_row = st.tuples(
    st.sampled_from("ABCDE"),  # article
    st.integers(0, 30),  # lo
    st.one_of(st.none(), st.integers(0, 10)),  # width, None = open above
    st.sampled_from([None, "x official", "y official"]),  # source
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_row, min_size=0, max_size=10), st.dictionaries(st.sampled_from("BCDE"), st.sampled_from("ABCD"), max_size=2))
def test_numeric_sides_each_have_a_disjoint_partner(rows: list[tuple[str, int, int | None, str | None]], dups: dict[str, str]) -> None:
    claims = [
        mk(a, i * 10, predicate="missing", value=iv(lo, None if w is None else lo + w), source=src)
        for i, (a, lo, w, src) in enumerate(rows)
    ]
    dups = {k: v for k, v in dups.items() if k != v}
    cs = find_contradictions(STORY, claims, arts("A", "B", "C", "D", "E", dup=dups))
    assert len(cs) <= 1
    given_values = {(c.value.lo, c.value.hi) for c in claims if c.value}
    for c in cs:
        assert c.kind == "numeric" and len(c.sides) >= 2
        ivs = [s.interval for s in c.sides]
        assert all(x is not None for x in ivs)
        assert [sort_key(x) for x in ivs if x] == sorted(sort_key(x) for x in ivs if x)
        for x in ivs:
            assert x is not None and (x.lo, x.hi) in given_values
            assert any(not compatible(x, y) for y in ivs if y is not None and y != x)
    if all(compatible(a.value, b.value) for a in claims for b in claims if a.value and b.value):
        assert cs == []


# --------------------------------------------------------------------------- issue 4 regressions


def test_stale_wire_copy_is_dated_by_its_original() -> None:
    """A copy republished after the toll rose carries the old figure: it is no later fall."""
    wire = mk("W", 0, predicate="killed", value=iv(9), source="civil defence")
    copy = mk("C", 0, predicate="killed", value=iv(9), source="civil defence")
    later = mk("L", 0, predicate="killed", value=iv(14), source="the institute")
    times = arts("W", "L", "C", dup={"C": "W"})  # the copy is published last
    assert find_contradictions(STORY, [wire, copy, later], times) == []
    # without the duplicate link, the late 9 looks like the toll going down
    assert len(find_contradictions(STORY, [wire, copy, later], arts("W", "L", "C"))) == 1
    [copy_report] = [r for r in make_reports([copy], times) if r.claim.article_id == "C"]
    assert copy_report.dated == (times["W"].published, times["W"].seen)
    assert copy_report.seen == times["C"].seen  # rule 8 still sees when the copy arrived


def test_duplicates_never_dispute_each_other() -> None:
    a = mk("A", 0, value=iv(14), source="police")
    b = mk("B", 0, value=iv(19), source="police")
    assert find_contradictions(STORY, [a, b], arts("A", "B", dup={"B": "A"})) == []


def test_falling_count_with_a_stated_earlier_figure_is_an_update() -> None:
    first = mk("A", 0, predicate="missing", value=iv(30, None), source="the institute")
    down = mk("B", 0, predicate="missing", value=iv(8), sentence="Eight were still missing, down from 30.")
    plain = down.model_copy(update={"sentence": "Eight were still missing."})
    assert find_contradictions(STORY, [first, down], arts("A", "B")) == []
    assert len(find_contradictions(STORY, [first, plain], arts("A", "B"))) == 1


def test_person_group_joins_people_one_sidedly() -> None:
    people = mk("A", 0, value=iv(30), source="police")
    more = mk("B", 0, theme="protesters", value=iv(101, None), source="organisers")
    fewer = mk("C", 0, theme="protesters", value=iv(12), source="organisers")
    [c] = find_contradictions(STORY, [people, more], arts("A", "B"))
    assert c.about == "detained:people@main" and [s.value for s in c.sides] == ["30", ">= 101"]
    # 12 protesters can be a part of 30 people
    assert find_contradictions(STORY, [people, fewer], arts("A", "C")) == []


def test_person_groups_stay_apart_without_a_people_figure_and_from_each_other() -> None:
    prot = mk("A", 0, predicate="injured", theme="protesters", value=iv(15), source="organisers")
    cops = mk("B", 0, predicate="injured", theme="police", value=iv(12), source="police")
    kids = mk("C", 0, predicate="injured", theme="children", value=iv(3), source="doctors")
    assert find_contradictions(STORY, [prot, cops], arts("A", "B")) == []
    people = mk("D", 0, predicate="injured", value=iv(20), source="the ministry")
    # protesters and children both join the people figure, but are never compared with each other
    assert find_contradictions(STORY, [prot, kids, people], arts("A", "C", "D")) == []
    assert group_by_about(make_reports([prot, cops], arts("A", "B"))).keys() == {
        "injured:protesters@main", "injured:police@main"}


def test_commanders_remain_a_subgroup_not_a_person_group() -> None:
    assert "commanders" not in ContradictConfig().person_groups
    people = mk("A", 0, value=iv(14), source="police")
    cmd = mk("B", 0, theme="commanders", value=iv(20), source="a source")
    assert find_contradictions(STORY, [people, cmd], arts("A", "B")) == []


def test_person_groups_mirror_the_claims_lexicon() -> None:
    from pipeline.claims import load_lexicon

    assert ContradictConfig().person_groups == load_lexicon().person_groups


def test_generic_counts_are_not_compared_but_crowds_are() -> None:
    a = mk("A", 0, predicate="count", event="count:shoot", value=iv(1), source="police")
    b = mk("B", 0, predicate="count", event="count:shoot", value=iv(3), source="police")
    assert find_contradictions(STORY, [a, b], arts("A", "B")) == []
    assert not comparable(a, ContradictConfig())
    crowd_a = mk("A", 0, predicate="count", event="count:crowd", value=iv(40000), source="organisers")
    crowd_b = mk("B", 0, predicate="count", event="count:crowd", value=iv(15000), source="police")
    [c] = find_contradictions(STORY, [crowd_a, crowd_b], arts("A", "B"))
    assert c.about == "count:people@count:crowd"
    # an outlet's own crowd figure (another part of the crowd, another city) raises no alarm
    own = crowd_b.model_copy(update={"source": "the outlet", "source_kind": "outlet"})
    assert find_contradictions(STORY, [crowd_a, own], arts("A", "B")) == []


def test_vague_custody_holders_are_not_sides() -> None:
    a = mk("A", 0, predicate="custody", slot="appropriate authorities", source="the statement")
    b = mk("B", 0, predicate="custody", slot="Kenya", source="officials")
    c = mk("C", 0, predicate="custody", slot="U.S. military", source="an official")
    assert find_contradictions(STORY, [a, b], arts("A", "B")) == []
    assert len(find_contradictions(STORY, [a, b, c], arts("A", "B", "C"))) == 1


def test_has_marker_matches_phrases_as_phrases() -> None:
    assert has_marker("Eight were missing, down from 30.", ("down from",))
    assert not has_marker("They came down and from there left.", ("down from",))
    assert has_marker("The toll rose to 14.", ("rose",))


def test_group_report_stands_on_a_side_only_if_it_conflicts() -> None:
    two = mk("A", 0, value=iv(2), source="a news agency")
    villagers = mk("B", 0, theme="civilians", value=iv(2), source="the governor")
    five = mk("C", 0, value=iv(5), source="state media")  # detained: no growing-toll rule
    [c] = find_contradictions(STORY, [two, villagers, five], arts("A", "B", "C"))
    assert [(s.value, s.articles) for s in c.sides] == [("2", ("A",)), ("5", ("C",))]


# --------------------------------------------------------------------------- rules 6b and 6c (ECB+ review)


def _killed(article: str, start: int, n: int, sentence: str, source: str | None = None) -> Claim:
    return mk(article, start, value=iv(n), predicate="killed", sentence=sentence, source=source)


def test_an_earlier_media_report_the_text_corrects_is_no_side():
    now = _killed("a1", 0, 1, "One person died in the shooting, police said.", source="police")
    early = _killed("a2", 10, 2, "Local television originally reported that two of the victims died.",
                    source="local television")
    assert find_contradictions(STORY, [now, early], {}) == []
    # an official's own earlier figure stays a position in the dispute
    official = _killed("a2", 10, 2, "A hospital official initially said two people had died.", source="a hospital official")
    found = find_contradictions(STORY, [now, official], {})
    assert [s.value for s in found[0].sides] == ["1", "2"]


def test_figures_for_different_named_days_never_conflict():
    mon = mk("a1", 0, value=iv(1), sentence="One man was arrested on Monday night.")
    wed = mk("a2", 0, value=iv(46), sentence="On Wednesday night 46 people were arrested.")
    assert find_contradictions(STORY, [mon, wed], {}) == []
    wed_other = mk("a3", 0, value=iv(40), sentence="Police said 40 were arrested on Wednesday.")
    found = find_contradictions(STORY, [mon, wed, wed_other], {})
    assert [[*s.articles] for s in found[0].sides] == [["a3"], ["a2"]]


def test_a_count_over_several_nights_makes_the_predicate_per_occasion():
    total = mk("a1", 0, value=iv(51, None), sentence="Over 50 arrests have been made over four nights of protest.")
    one = mk("a2", 0, value=iv(1), sentence="One person was arrested after the vigil.")
    many = mk("a3", 0, value=iv(46), sentence="By the end, 46 people had been arrested.")
    assert find_contradictions(STORY, [one, many], {})  # without the span: an alarm
    assert find_contradictions(STORY, [total, one, many], {}) == []  # with it: nights apart


def test_in_a_multi_day_story_a_one_day_figure_is_not_weighed_against_a_running_total():
    span = mk("a1", 0, value=iv(70, None), predicate="injured", sentence="At least 70 were hurt over the past eight days.")
    total = mk("a2", 0, value=iv(201, None), sentence="More than 200 people have been arrested.")
    saturday = mk("a3", 0, value=iv(86), sentence="Police made 86 arrests during Saturday's protests.")
    assert find_contradictions(STORY, [total, saturday], {})  # a one-off story: compared
    assert find_contradictions(STORY, [span, total, saturday], {}) == []


def test_marked_revision_counts_as_a_marker_when_the_order_is_known() -> None:
    """"Raising the number of detainees to 19" has no marker word, but the extractor marked it."""
    first = mk("A", 0, value=iv(14))
    raised = mk("B", 0, value=iv(19), sentence="Two more arrests raised the number of detainees to 19.")
    assert len(find_contradictions(STORY, [first, raised], arts("A", "B"))) == 1
    marked = raised.model_copy(update={"revision": True})
    assert find_contradictions(STORY, [first, marked], arts("A", "B")) == []
    # published the other way round, the marked figure came first: 14 later is a fall
    assert len(find_contradictions(STORY, [first, marked], arts("B", "A"))) == 1


_small = st.integers(min_value=0, max_value=40)


@settings(max_examples=150, deadline=None)
@given(_small, _small, _small, st.booleans(), st.booleans())
def test_superseded_by_revision_is_symmetric_and_needs_disjoint_figures(
    x: int, y: int, r: int, open_x: bool, dated: bool
) -> None:
    cfg = ContradictConfig()
    info = arts("A", "B", "C") if dated else UNDATED
    a, b, rev = make_reports(
        [mk("A", 0, predicate="killed", value=iv(x, None if open_x else x)), mk("B", 0, predicate="killed", value=iv(y)),
         mk("C", 0, predicate="killed", value=iv(r), revision=True)],
        info,
    )
    got = superseded_by_revision(a, b, [rev], cfg)
    assert got == superseded_by_revision(b, a, [rev], cfg)
    if compatible(a.claim.value, b.claim.value):  # type: ignore[arg-type]
        assert not got
    if got:  # the revision agrees with the higher figure and is above the lower one
        low, high = sorted((a.claim.value, b.claim.value), key=sort_key)  # type: ignore[arg-type]
        assert r > low.lo and compatible(rev.claim.value, high)  # type: ignore[arg-type]
