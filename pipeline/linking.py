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

from .link import LinkerConfig, StoryLinker
from .settings import Settings

#: The table key of the last batch's journal (story ids never start with an underscore).
JOURNAL_KEY = "__batch__"

log = logging.getLogger(__name__)


def linker_config(s: Settings) -> LinkerConfig:
    return LinkerConfig(threshold=s.link_threshold, horizon_days=s.link_horizon_days)


def make_linker(s: Settings, state: Iterable[Mapping] = ()) -> StoryLinker:
    """A linker with the configured threshold and horizon; ``state`` is what
    :meth:`StoryLinker.export_story` returned for each key (see :func:`link_state`)."""
    return StoryLinker.restore(linker_config(s), state)


def encode(exported: Mapping) -> bytes:
    """A table value: compact JSON."""
    return json.dumps(exported, separators=(",", ":"), ensure_ascii=False).encode()


def journal(encoded: Mapping[str, bytes]) -> bytes:
    """The table value of :data:`JOURNAL_KEY` for one batch: every export it changed (tombstones
    included), each given as its table value (:func:`encode`), in one message."""
    parts = b",".join(json.dumps(sid).encode() + b":" + value for sid, value in encoded.items())
    return b'{"kind":"journal","exports":{' + parts + b"}}"


def link_state(values: Iterable[bytes | str]) -> list[dict]:
    """The linker's state from the table's values: the per-story exports with the last journal
    laid over them (a story the journal retired is dropped)."""
    by_id: dict[str, dict] = {}
    last: dict = {}
    for raw in values:
        d = json.loads(raw)
        if d.get("kind") == "journal":
            last = d["exports"]
        else:
            by_id[d["id"]] = d
    for sid, exported in last.items():
        if exported.get("kind") == "tombstone":
            by_id.pop(sid, None)
        else:
            by_id[sid] = dict(exported)
    return list(by_id.values())


def batch_writes(exports: Mapping[str, Mapping], journal_limit: int) -> list[tuple[str, bytes | None]]:
    """The link table's writes for one batch, in order (``None`` deletes the key): the retired
    base's new shards; the journal of everything else (:data:`JOURNAL_KEY`), or its delete when
    it would be over ``journal_limit`` bytes (an older journal must not be laid over newer
    values); then one write per key, tombstones as deletes."""
    encoded = {key: encode(e) for key, e in exports.items()}
    early = [key for key, e in exports.items() if e.get("kind") == "retired_shard"]
    rest = {key: value for key, value in encoded.items() if exports[key].get("kind") != "retired_shard"}
    writes: list[tuple[str, bytes | None]] = [(key, encoded[key]) for key in early]
    if rest:
        entry = journal(rest)
        if len(entry) <= journal_limit:
            writes.append((JOURNAL_KEY, entry))
        else:
            writes.append((JOURNAL_KEY, None))
            log.warning("link batch of %d keys (%d bytes) written without its journal: a crash while it "
                        "is written can leave the link state mixed", len(rest), len(entry))
    writes += [(key, None if exports[key].get("kind") == "tombstone" else value) for key, value in rest.items()]
    return writes
