"""The link table's write protocol (pipeline.linking): a batch killed half-way through its table
writes restores to the state before or after the batch, never to a mix of the two."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.link import LinkerConfig, StoryLinker
from pipeline.link import RETIRED_KEY, RETIRED_PREFIX
from pipeline.linking import JOURNAL_KEY, batch_writes, encode, journal, link_state
from tests.unit.test_link import stream

# Retired stories fold every second retirement, into shards of a few KB: folds happen in the runs.
CFG = LinkerConfig(horizon_days=4, max_fingerprints=3, top_k_terms=20, retired_fold_every=2, retired_shard_bytes=4096)


def _items(seed: int) -> list:
    # six topics over a month with a four-day horizon: stories retire, and their records fold
    return stream(seed=seed, n=60, topics=6, days=30)


def _writes(linker: StoryLinker, batch: list, *, with_journal: bool) -> list[tuple[str, bytes | None]]:
    """Link one batch as the worker does; the table writes it makes, in order (None: a delete)."""
    changed: dict[str, None] = {}
    for aid, _, f, when in batch:
        linker.link(aid, f, when, now=when)
        changed.update(dict.fromkeys(linker.changed_stories()))
    exports = {sid: linker.export_story(sid) for sid in changed}
    if with_journal:
        return batch_writes(exports, journal_limit=1 << 30)
    return [(sid, None if e["kind"] == "tombstone" else encode(e)) for sid, e in exports.items()]


def _apply(table: dict[str, bytes], writes: list[tuple[str, bytes | None]]) -> None:
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


def _state(linker: StoryLinker) -> list[dict]:
    return sorted(json.loads(json.dumps(linker.export_all())), key=lambda d: d["id"])


def _restored(table: dict[str, bytes]) -> list[dict]:
    return _state(StoryLinker.restore(CFG, link_state(table.values())))


def _cut(seed: int, batch_size: int, k: int, kept: int) -> tuple[list[dict], list[dict], list[dict], int, list]:
    """Run batches, and stop the writes of batch ``k`` after ``kept`` of them. Returns (state
    before that batch, state after it, restored state, writes kept past the journal, the batch's
    writes): a batch's new shards of the retired base come first, and alone they change nothing."""
    items = _items(seed)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    linker = StoryLinker(CFG)
    table: dict[str, bytes] = {}
    for b in batches[:k]:
        _apply(table, _writes(linker, b, with_journal=True))
    before = _state(linker)
    writes = _writes(linker, batches[k], with_journal=True)
    _apply(table, writes[:kept])
    first = next((i for i, (key, _) in enumerate(writes) if key == JOURNAL_KEY), len(writes))
    return before, _state(linker), _restored(table), kept - first, writes


def _crash(seed: int, batch_size: int, at: int, *, with_journal: bool) -> tuple[list[dict], list[dict], list[dict], int]:
    """Run batches, and stop the writes of batch ``at // batch_size`` after ``at % (its writes + 1)``
    of them. Returns (state before that batch, state after it, restored state, writes kept past
    the journal)."""
    items = _items(seed)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    linker = StoryLinker(CFG)
    table: dict[str, bytes] = {}
    k = min(at // batch_size, len(batches) - 1)
    for b in batches[:k]:
        _apply(table, _writes(linker, b, with_journal=with_journal))
    before = _state(linker)
    writes = _writes(linker, batches[k], with_journal=with_journal)
    kept = at % (len(writes) + 1)
    _apply(table, writes[:kept])
    first = next((i for i, (key, _) in enumerate(writes) if key == JOURNAL_KEY), 0 if not with_journal else len(writes))
    return before, _state(linker), _restored(table), kept - first


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(0, 10_000))
def test_a_batch_cut_short_restores_to_before_or_after_it(seed: int, batch_size: int, at: int) -> None:
    before, after, restored, past_journal = _crash(seed, batch_size, at, with_journal=True)
    assert restored == (before if past_journal <= 0 else after)


def test_without_the_journal_a_batch_cut_short_restores_a_state_that_never_was() -> None:
    """What the journal is for: the same crash with per-story writes only (the test above would
    catch a journal that does nothing)."""
    mixed = 0
    for at in range(0, 60, 1):
        before, after, restored, _ = _crash(7, 6, at, with_journal=False)
        mixed += restored not in (before, after)
    assert mixed > 0


def test_the_journal_drops_what_the_batch_retired() -> None:
    stale = encode({"kind": "story", "id": "s1", "size": 1})
    live = encode({"kind": "story", "id": "s2", "size": 2})
    newer = {"kind": "story", "id": "s2", "size": 3}
    j = journal({"s1": encode({"kind": "tombstone", "id": "s1"}), "s2": encode(newer)})
    # the per-story writes of the journal's batch did not land: s1 is still there, s2 is older
    assert link_state([j, stale, live]) == [newer]  # the journal key is the table's first


def test_a_fold_cut_at_any_write_restores_before_or_after_it() -> None:
    """The batches in which the retired records fold into a new base, cut at every write: the
    new shards alone restore the state before the batch; from the journal on, the state after."""
    items = _items(3)
    linker = StoryLinker(CFG)
    folds = []
    for k, i in enumerate(range(0, len(items), 4)):
        if any(key == RETIRED_KEY for key, _ in _writes(linker, items[i : i + 4], with_journal=True)):
            folds.append(k)
    assert folds, "the stream has no fold: the test would prove nothing"
    for k in folds:
        *_, writes = _cut(3, 4, k, 0)
        assert writes[0][0].startswith(RETIRED_PREFIX + "g")  # the new shards lead
        for kept in range(len(writes) + 1):
            before, after, restored, past_journal, _ = _cut(3, 4, k, kept)
            assert restored == (before if past_journal <= 0 else after)
