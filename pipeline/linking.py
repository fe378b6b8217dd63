"""Build the story linker from settings (and from persisted state after a restart).

The worker keeps the linker's state in a table, one key per story (what
:meth:`StoryLinker.export_story` returns) plus the retired aggregate. One batch of articles changes
several keys, and without Kafka transactions their changelog messages are not written atomically:
a worker killed half-way leaves some stories after the batch and others before it. The global
document frequencies then disagree with the stories, and the replayed batch is linked against a
state that never existed (measured on the fault-suite corpus: one crash point in 114 gave other
stories than the uninterrupted run, with an article in two stories). So each batch first writes
its whole change as one message under :data:`JOURNAL_KEY` (one message is atomic), then the
per-story keys; :func:`link_state` lays the last journal over the per-story values, which gives
exactly the state after that batch whatever part of the per-story writes landed.

A journal bigger than one message (``JournalWriter.limit``, below the brokers' message limit) is
written in parts: ``__batch__/<n>/<i>`` for each part of journal number ``n``, then the journal key
itself naming ``n`` and how many parts it has. Parts of a new number never overwrite the parts the
last journal names, so until its head is written a restore still lays the previous journal, whole;
the parts no journal names any more are deleted after the next head.

The retired aggregate is kept in parts that stay small however long the stream runs (see
:class:`pipeline.link.StoryLinker`): each retirement writes one record, and every so many records
fold into a new base written as shards under a new generation. The shards go first, before the
journal and outside it: until the journal (or the meta key) names their generation a restore
ignores them, so a crash in the middle of them restores the state before the batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping

from pydantic_core import to_json

from .link import LinkerConfig, StoryLinker
from .settings import Settings

#: The table key of the last batch's journal (story ids never start with an underscore).
JOURNAL_KEY = "__batch__"
#: Keys of the parts of a journal too big for one message: ``__batch__/<journal number>/<part>``.
JOURNAL_PART_PREFIX = JOURNAL_KEY + "/"

log = logging.getLogger(__name__)


def linker_config(s: Settings) -> LinkerConfig:
    return LinkerConfig(threshold=s.link_threshold, horizon_days=s.link_horizon_days)


def make_linker(s: Settings, state: Iterable[Mapping] = ()) -> StoryLinker:
    """A linker with the configured threshold and horizon; ``state`` is what
    :meth:`StoryLinker.export_story` returned for each key (see :func:`link_state`)."""
    return StoryLinker.restore(linker_config(s), state)


def encode(exported: Mapping) -> bytes:
    """A table value: compact UTF-8 JSON, written by pydantic's Rust encoder. It reads back to the
    same values as ``json.dumps(exported, separators=(",", ":"), ensure_ascii=False)`` (only some
    floats are spelt differently, 0.00001 for 1e-05) and is about 4x faster: a batch's exports are
    tens of KB per article, encoded on the thread that also runs the event loop."""
    return to_json(exported)


def journal(encoded: Mapping[str, bytes]) -> bytes:
    """The table value of :data:`JOURNAL_KEY` for one batch: every export it changed (tombstones
    included), each given as its table value (:func:`encode`), in one message."""
    return _spliced("journal", encoded)


def _spliced(kind: str, encoded: Mapping[str, bytes], extra: bytes = b"") -> bytes:
    # the exports are already encoded: spliced in as they are, not decoded and encoded again
    parts = b",".join(json.dumps(sid).encode() + b":" + value for sid, value in encoded.items())
    return b'{"kind":"' + kind.encode() + b'"' + extra + b',"exports":{' + parts + b"}}"


def part_key(number: int, index: int) -> str:
    return f"{JOURNAL_PART_PREFIX}{number}/{index}"


def link_state(values: Iterable[bytes | str]) -> list[dict]:
    """The linker's state from the table's values (see :func:`read_link_table`)."""
    return read_link_table(values)[0]


def read_link_table(values: Iterable[bytes | str]) -> tuple[list[dict], list[str]]:
    """(the linker's state, the keys the last journal names) from the table's values. The state is
    the per-story exports with the last journal laid over them (a story the journal retired is
    dropped); a journal in parts is laid over whole, from the parts of its number, and parts of
    other numbers are ignored.

    The keys must be written again with the next batch: the worker may have died before their
    own writes landed, and the next journal replaces this one (a replayed batch changes nothing,
    so it would not write them)."""
    by_id: dict[str, dict] = {}
    head: dict = {}
    parts: dict[tuple[int, int], dict] = {}
    for raw in values:
        d = json.loads(raw)
        kind = d.get("kind")
        if kind == "journal":
            head = d
        elif kind == "journal_part":
            parts[(d["number"], d["index"])] = d["exports"]
        else:
            by_id[d["id"]] = d
    last: dict = head.get("exports", {})
    if "parts" in head:
        chunks = [parts.get((head["number"], i)) for i in range(head["parts"])]
        if any(c is None for c in chunks):  # the protocol never leaves this: keys deleted by hand
            log.error("link journal %d lacks parts (%d of %d in the table): restored without it",
                      head["number"], sum(c is not None for c in chunks), head["parts"])
        else:
            last = {sid: e for c in chunks if c is not None for sid, e in c.items()}
    for sid, exported in last.items():
        if exported.get("kind") == "tombstone":
            by_id.pop(sid, None)
        else:
            by_id[sid] = dict(exported)
    return list(by_id.values()), list(last)


def _chunks(encoded: Mapping[str, bytes], limit: int) -> list[dict[str, bytes]]:
    """``encoded`` in order, packed into groups whose journal part stays within ``limit`` bytes (an
    export bigger than that alone makes a group of one)."""
    out: list[dict[str, bytes]] = [{}]
    size = 0
    for sid, value in encoded.items():
        n = len(value) + len(sid) + 8
        if out[-1] and size + n > limit - 128:
            out.append({})
            size = 0
        out[-1][sid] = value
        size += n
    return out


class JournalWriter:
    """The link table's writes for each batch, in order (``None`` deletes the key): the retired
    base's new shards; the journal of everything else (:data:`JOURNAL_KEY`), in one message when
    it fits in ``limit`` bytes and else in parts under a new journal number, then its head; one
    write per key, tombstones as deletes; last, deletes of the parts no journal names any more.

    It remembers which part keys it left in the table; after a restart, :meth:`restore` reads
    them from the table's keys (no value is decoded)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.number = 0  # the number of the next journal in parts
        self.parts: set[str] = set()  # part keys that may be in the table

    def restore(self, keys: Iterable[str]) -> None:
        """Learn the part keys already in the table (the table's keys after a restart)."""
        self.parts = {k for k in keys if k.startswith(JOURNAL_PART_PREFIX)}
        numbers = [int(k[len(JOURNAL_PART_PREFIX):].split("/")[0]) for k in self.parts]
        self.number = max(numbers, default=-1) + 1

    def writes(self, exports: Mapping[str, Mapping]) -> list[tuple[str, bytes | None]]:
        encoded = {key: encode(e) for key, e in exports.items()}
        early = [key for key, e in exports.items() if e.get("kind") == "retired_shard"]
        rest = {key: value for key, value in encoded.items() if exports[key].get("kind") != "retired_shard"}
        writes: list[tuple[str, bytes | None]] = [(key, encoded[key]) for key in early]
        if not rest:
            return writes
        entry = journal(rest)
        unused = self.parts
        if len(entry) <= self.limit:
            writes.append((JOURNAL_KEY, entry))
            self.parts = set()
        else:
            number = self.number
            self.number += 1
            chunks = _chunks(rest, self.limit)
            keys = [part_key(number, i) for i in range(len(chunks))]
            writes += [
                (key, _spliced("journal_part", chunk, b',"number":%d,"index":%d' % (number, i)))
                for i, (key, chunk) in enumerate(zip(keys, chunks, strict=True))
            ]
            writes.append((JOURNAL_KEY, _spliced("journal", {}, b',"number":%d,"parts":%d' % (number, len(chunks)))))
            self.parts = set(keys)
            log.info("link batch of %d keys (%d bytes) journaled in %d parts", len(rest), len(entry), len(chunks))
        writes += [(key, None if exports[key].get("kind") == "tombstone" else value) for key, value in rest.items()]
        writes += [(key, None) for key in sorted(unused - self.parts)]
        return writes

