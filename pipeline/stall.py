"""The consumer stall watchdog's decision, as a pure function of offsets and times.

faust marks a message *read* before its agent has it, and if flow is suspended while the hand-over
waits, the message is dropped (``faust.transport.consumer.Consumer._drain_messages`` cancels the
delivery but keeps the read offset). It is never processed nor acknowledged, so the partition's
committed offset stops there for good while later messages go through: one article silently never
indexed (seen after a worker restart). :class:`StallWatch` tells the worker when a partition is in
that state, so that it re-reads the partition from its committed offset (effects are idempotent).

faust's committed offset does not always show such a hole: when its consumer sees offsets jump
(say after a seek, with records of the earlier position still being delivered), it records the
jump as a gap of offsets that need no acknowledgement (what compaction or transaction markers
leave) and commits past them. A message in that range that was never processed is then lost for
good (seen once in the fault suite: one article of 500 never linked after a worker restart).
:class:`Progress` therefore keeps the worker's own account, from the offsets its agents finished:
the next offset of each partition not finished yet. The watchdog reads that instead of the
committed offset, and before it re-reads a hole it asks the broker whether the log holds a record
there at all (:func:`pipeline.kafka.first_offset_at`): transaction markers and compaction leave
offsets with no record, which are skipped (:meth:`Progress.skip`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    """Per source partition: the committed offset seen while behind, and since when.

    A partition is *behind* when its committed offset (the next offset to commit) is at or before
    the last offset read, and none of its batches is being handled. It is *stalled* when it has been
    behind at the same committed offset for ``stall_s``, has not finished a message for ``stall_s``
    either (a slow batch or a paused stream is not a stall), and its unfinished message cannot just
    be waiting its turn: a later offset of the partition was finished (a gap), or no partition of
    its topic finished a message for ``stall_s`` (nothing else is being worked through). Behind a
    backlog, faust's read-ahead buffer holds one partition's messages for minutes while the agent
    works through the others: that partition is queued, not stalled, and re-reading it would only
    process its messages twice (seen seven times in the bench's growth phase before this rule)."""

    stall_s: float
    _since: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def check(
        self,
        tp: Hashable,
        *,
        committed: int | None,
        read: int | None,
        busy: bool,
        idle_s: float,
        now: float,
        finished: int | None = None,
        topic_idle_s: float | None = None,
    ) -> int | None:
        """The offset to re-read ``tp`` from, or None. ``idle_s``: seconds since the partition last
        finished a message; ``finished``: the highest offset of it finished so far; ``topic_idle_s``:
        seconds since any partition of its topic finished one (``None``: as ``idle_s``). A returned
        offset resets the watch for ``tp``."""
        behind = committed is not None and read is not None and committed <= read and not busy
        if not behind:
            self._since.pop(tp, None)
            return None
        assert committed is not None
        first = self._since.get(tp)
        if first is None or first[0] != committed:
            self._since[tp] = (committed, now)
            return None
        if now - first[1] < self.stall_s:
            return None
        # A later offset of the partition was finished while this one was not: offsets of one
        # partition are handled in order, so it is a hole, not a message waiting its turn, and it
        # is re-read even while the partition keeps finishing later messages.
        gap = finished is not None and finished >= committed
        if not gap:
            if idle_s < self.stall_s:
                return None  # a slow batch or a paused stream
            if (idle_s if topic_idle_s is None else topic_idle_s) < self.stall_s:
                return None  # queued behind the topic's other partitions
        del self._since[tp]
        return committed

    def forget(self, tp: Hashable) -> None:
        self._since.pop(tp, None)


@dataclass
class Progress:
    """Per source partition, the next offset not finished yet, from the offsets finished.

    The first finished offset of a partition starts its account at that offset or at the
    partition's committed offset when that is lower (where its reading started, so that a hole at
    the very start counts too). Offsets below the account (re-reads) change nothing; finished
    offsets above a hole wait in a set until the hole is finished or :meth:`skip` is called."""

    _next: dict[Hashable, int] = field(default_factory=dict)
    _ahead: dict[Hashable, set[int]] = field(default_factory=dict)

    def finish(self, tp: Hashable, offset: int, committed: int | None = None) -> None:
        nxt = self._next.get(tp)
        if nxt is None:
            nxt = offset if committed is None else min(offset, committed)
        if offset < nxt:
            return
        ahead = self._ahead.setdefault(tp, set())
        ahead.add(offset)
        while nxt in ahead:
            ahead.discard(nxt)
            nxt += 1
        self._next[tp] = nxt

    def next(self, tp: Hashable) -> int | None:
        """The lowest offset of ``tp`` not finished (None: nothing finished since it was assigned)."""
        return self._next.get(tp)

    def highest(self, tp: Hashable) -> int | None:
        """The highest offset of ``tp`` finished (None: nothing finished since it was assigned)."""
        ahead = self._ahead.get(tp)
        if ahead:
            return max(ahead)
        nxt = self._next.get(tp)
        return None if nxt is None else nxt - 1

    def skip(self, tp: Hashable, to: int | None = None) -> tuple[int, int] | None:
        """Give up on the offsets from :meth:`next` to ``to`` (excluded; default: the lowest
        finished offset above it), which the log does not hold. The account then moves on
        through the finished offsets from there. Returns the range skipped ``[from, to)``, or None
        when there is nothing to skip."""
        ahead = self._ahead.setdefault(tp, set())
        nxt = self._next.get(tp)
        if to is None:
            to = min(ahead, default=None)
        if nxt is None or to is None or to <= nxt:
            return None
        end = to
        while end in ahead:
            ahead.discard(end)
            end += 1
        self._next[tp] = end
        return nxt, to

    def forget(self, tp: Hashable) -> None:
        self._next.pop(tp, None)
        self._ahead.pop(tp, None)


__all__ = ["Progress", "StallWatch"]
