"""The link table's write protocol (pipeline.linking): a batch killed half-way through its table
writes restores to the state before or after the batch, never to a mix of the two."""

from __future__ import annotations

import json
from collections.abc import Iterable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.link import LinkerConfig, StoryLinker
from pipeline.link import RETIRED_KEY, RETIRED_PREFIX
from pipeline.linking import JOURNAL_KEY, JOURNAL_PART_PREFIX, JournalWriter, encode, journal, link_state, read_link_table
from tests.unit.test_link import stream

# Retired stories fold every second retirement, into shards of a few KB: folds happen in the runs.
# A journal over SMALL bytes is written in parts (most journals of these streams, a few KB each).
SMALL = 1500
NO_LIMIT = 1 << 30
CFG = LinkerConfig(horizon_days=4, max_fingerprints=3, top_k_terms=20, retired_fold_every=2, retired_shard_bytes=4096)


def _items(seed: int) -> list:
    # six topics over a month with a four-day horizon: stories retire, and their records fold
    return stream(seed=seed, n=60, topics=6, days=30)


def _writes(linker: StoryLinker, batch: list, writer: JournalWriter | None, pending: Iterable[str] = ()) -> list[tuple[str, bytes | None]]:
    """Link one batch as the worker does; the table writes it makes, in order (None: a delete).
    Without a ``writer``, one write per key and no journal. ``pending``: keys written again
    whatever the batch changes (after a restart, those of the journal it restored)."""
    changed: dict[str, None] = dict.fromkeys(pending)
    for aid, _, f, when in batch:
        linker.link(aid, f, when, now=when)
        changed.update(dict.fromkeys(linker.changed_stories()))
    exports = {sid: linker.export_story(sid) for sid in changed}
    if writer is not None:
        return writer.writes(exports)
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


def _cut(seed: int, batch_size: int, k: int, kept: int, limit: int = NO_LIMIT) -> tuple[list[dict], list[dict], list[dict], int, list]:
    """Run batches, and stop the writes of batch ``k`` after ``kept`` of them. Returns (state
    before that batch, state after it, restored state, writes kept past the journal, the batch's
    writes): a batch's new shards of the retired base come first, and alone they change nothing."""
    items = _items(seed)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    linker = StoryLinker(CFG)
    writer = JournalWriter(limit)
    table: dict[str, bytes] = {}
    for b in batches[:k]:
        _apply(table, _writes(linker, b, writer))
    before = _state(linker)
    writes = _writes(linker, batches[k], writer)
    _apply(table, writes[:kept])
    first = next((i for i, (key, _) in enumerate(writes) if key == JOURNAL_KEY), len(writes))
    return before, _state(linker), _restored(table), kept - first, writes


def _crash(seed: int, batch_size: int, at: int, *, limit: int | None) -> tuple[list[dict], list[dict], list[dict], int, dict]:
    """Run batches, and stop the writes of batch ``at // batch_size`` after ``at % (its writes + 1)``
    of them. Returns (state before that batch, state after it, restored state, writes kept past
    the journal's head, the table). ``limit``: the journal's, or ``None`` for no journal."""
    items = _items(seed)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    linker = StoryLinker(CFG)
    writer = JournalWriter(limit) if limit is not None else None
    table: dict[str, bytes] = {}
    k = min(at // batch_size, len(batches) - 1)
    for b in batches[:k]:
        _apply(table, _writes(linker, b, writer))
    before = _state(linker)
    writes = _writes(linker, batches[k], writer)
    kept = at % (len(writes) + 1)
    _apply(table, writes[:kept])
    first = next((i for i, (key, _) in enumerate(writes) if key == JOURNAL_KEY), 0 if writer is None else len(writes))
    return before, _state(linker), _restored(table), kept - first, table


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(0, 10_000), st.sampled_from([NO_LIMIT, SMALL]))
def test_a_batch_cut_short_restores_to_before_or_after_it(seed: int, batch_size: int, at: int, limit: int) -> None:
    """Whole journals and journals in parts alike: the parts of the cut batch's journal, until its
    head, leave the previous journal as it was."""
    before, after, restored, past_journal, _ = _crash(seed, batch_size, at, limit=limit)
    assert restored == (before if past_journal <= 0 else after)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(0, 10_000), st.sampled_from([NO_LIMIT, SMALL]))
def test_a_restart_after_a_cut_batch_goes_on_as_if_uninterrupted(seed: int, batch_size: int, at: int, limit: int) -> None:
    """A worker restarted after the cut restores the linker and the journal writer from the table,
    links the cut batch again and goes on: the state and the table end as without the cut, and
    the table holds no journal parts but the last journal's (orphans of the cut are deleted).

    The restored journal's keys are written again with the first batch: the replayed batch
    changes nothing, and without them the next journal would replace the restored one while
    some of its keys' own writes never landed (a retired story came back at the next restart)."""
    items = _items(seed)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    k = min(at // batch_size, len(batches) - 1)
    *_, table = _crash(seed, batch_size, at, limit=limit)
    state, pending = read_link_table(table.values())
    linker = StoryLinker.restore(CFG, state)
    writer = JournalWriter(limit)
    writer.restore(table.keys())
    for b in batches[k:]:
        _apply(table, _writes(linker, b, writer, pending))
        pending = []
    straight = StoryLinker(CFG)
    for b in batches:
        _writes(straight, b, None)
    assert _state(linker) == _state(straight) == _restored(table)
    assert {k for k in table if k.startswith(JOURNAL_PART_PREFIX)} == writer.parts


def test_without_the_journal_a_batch_cut_short_restores_a_state_that_never_was() -> None:
    """What the journal is for: the same crash with per-story writes only (the test above would
    catch a journal that does nothing)."""
    mixed = 0
    for at in range(0, 60, 1):
        before, after, restored, *_ = _crash(7, 6, at, limit=None)
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
        if any(key == RETIRED_KEY for key, _ in _writes(linker, items[i : i + 4], JournalWriter(NO_LIMIT))):
            folds.append(k)
    assert folds, "the stream has no fold: the test would prove nothing"
    for k in folds:
        *_, writes = _cut(3, 4, k, 0)
        assert writes[0][0].startswith(RETIRED_PREFIX + "g")  # the new shards lead
        for kept in range(len(writes) + 1):
            before, after, restored, past_journal, _ = _cut(3, 4, k, kept)
            assert restored == (before if past_journal <= 0 else after)


def test_a_journal_over_the_limit_goes_in_parts_each_within_it() -> None:
    """Parts of at most the limit (an export is never split), a head naming them last, and the
    parts of the journal before deleted once the new head is written."""
    linker = StoryLinker(CFG)
    writer = JournalWriter(SMALL)
    items = _items(5)
    first = _writes(linker, items[:8], writer)
    parts = [(k, v) for k, v in first if k.startswith(JOURNAL_PART_PREFIX)]
    assert len(parts) >= 2, "the batch's journal fits in one message: the test would prove nothing"
    head = next(i for i, (k, _) in enumerate(first) if k == JOURNAL_KEY)
    assert all(first.index(p) < head for p in parts)
    for _, v in parts:
        exports = json.loads(v)["exports"]
        assert len(v) <= SMALL or len(exports) == 1
    assert json.loads(first[head][1]) == {"kind": "journal", "number": 0, "parts": len(parts), "exports": {}}
    second = _writes(linker, items[8:16], writer)
    head2 = next(i for i, (k, _) in enumerate(second) if k == JOURNAL_KEY)
    deletes = [k for k, v in second if v is None and k.startswith(JOURNAL_PART_PREFIX)]
    assert sorted(deletes) == sorted(k for k, _ in parts)  # the first journal's parts, after the new head
    assert all(second.index((k, None)) > head2 for k in deletes)


def test_a_journal_that_lacks_parts_is_not_laid_over() -> None:
    """Only keys deleted by hand can leave a head without its parts: the per-story values are used."""
    live = {"kind": "story", "id": "s2", "size": 2}
    head = b'{"kind":"journal","number":3,"parts":2,"exports":{}}'
    part = b'{"kind":"journal_part","number":3,"index":0,"exports":{"s2":{"kind":"story","id":"s2","size":3}}}'
    assert link_state([head, part, encode(live)]) == [live]


def test_encode_reads_back_as_the_stdlib_encoding_does() -> None:
    exported = {
        "kind": "story",
        "id": "s1",
        "weights": {"tiny": 1e-05, "sum": 0.1 + 0.2, "huge": 1e300, "zero": -0.0},
        "members": ("a1", "a2"),
        "titles": ["Beşiktaş · 東京 — “quoted”"],
        "published": None,
        "size": 2,
    }
    raw = encode(exported)
    assert isinstance(raw, bytes)
    stdlib = json.dumps(exported, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(raw) == json.loads(stdlib)
    assert "東".encode() in raw  # UTF-8 as is, not \\u escapes
    assert encode(json.loads(raw)) == raw  # stable: a restored export encodes to the same bytes
