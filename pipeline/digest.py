"""Digests: one message for the updates a story produced in a short window, instead of one each.

Values only: the window arithmetic, the digest's deterministic id, and what changed in each
contradiction since it was last announced on its own. The outbox side (holding updates, sending the
digest at the end of its window, crash recovery) is in :mod:`pipeline.notify`; the Block Kit
rendering is :func:`pipeline.alert.build_digest_blocks`.

Windows are tumbling and aligned to the epoch (``[k*W, (k+1)*W)`` seconds), so every worker puts
the same instant in the same window and a digest's id, ``stable_id("digest", story, window start)``,
is the same whoever computes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from .types import Contradiction, Frozen, Side, stable_id


class SideChange(Frozen):
    """What one side of a contradiction gained: a value nobody reported before (``new``), or
    sources added to a value already reported. ``sources`` are display labels (see :func:`sources`)."""

    value: str
    new: bool
    sources: tuple[str, ...] = ()


class DigestEntry(Frozen):
    """One contradiction in a digest: its latest state, the version last announced on its own
    (0 when none is known) and the held update alerts it stands for."""

    contradiction: Contradiction
    from_version: int
    alert_ids: tuple[str, ...]
    changes: tuple[SideChange, ...] = ()


class Digest(Frozen):
    """The content of one digest message, persisted in the digest's outbox record before it is
    sent, so a re-send after a crash says exactly the same thing."""

    id: str
    story: str
    story_title: str
    window_start: datetime
    window_end: datetime
    entries: tuple[DigestEntry, ...]

    @property
    def alert_ids(self) -> frozenset[str]:
        """Every held update alert this digest carries."""
        return frozenset(a for e in self.entries for a in e.alert_ids)

    @property
    def updates(self) -> int:
        return sum(len(e.alert_ids) for e in self.entries)


def _utc(at: datetime) -> datetime:
    # naive times are UTC throughout the pipeline (see documents.iso)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def window_of(at: datetime, window_s: float) -> tuple[datetime, datetime]:
    """The digest window ``[start, end)`` holding ``at``: epoch-aligned, ``window_s`` long."""
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, not {window_s!r}")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = (_utc(at) - epoch).total_seconds()
    k = math.floor(seconds / window_s)
    start = epoch + timedelta(seconds=k * window_s)
    if start > _utc(at):  # float rounding at a boundary
        start -= timedelta(seconds=window_s)
    return start, start + timedelta(seconds=window_s)


def digest_id(story: str, window_start: datetime) -> str:
    """The outbox id of a story's digest for the window starting at ``window_start``."""
    return stable_id("digest", story, _utc(window_start).isoformat())


def sources(side: Side) -> tuple[str, ...]:
    """Who reported a side, as display labels in first-seen order: ``"Reuters (a police official)"``
    per report, else the outlets, else the article ids."""
    labels: list[str] = []
    if side.reports:
        for r in side.reports:
            who = r.outlet or r.article
            labels.append(f"{who} ({r.attributed_to})" if r.attributed_to else who)
    else:
        labels += side.outlets or side.articles
        labels += [f"according to {a}" for a in side.attributed_to]
    return tuple(dict.fromkeys(labels))


def side_changes(before: Contradiction | None, after: Contradiction) -> tuple[SideChange, ...]:
    """What ``after`` adds to ``before`` (the version last announced), side by side in ``after``'s
    order: new values with all their sources, then known values with only the sources they gained.
    Sides that gained nothing are left out. With no ``before`` every side is new."""
    known = {s.value: set(sources(s)) for s in before.sides} if before is not None else {}
    out: list[SideChange] = []
    for side in after.sides:
        labels = sources(side)
        if side.value not in known:
            out.append(SideChange(value=side.value, new=True, sources=labels))
            continue
        added = tuple(x for x in labels if x not in known[side.value])
        if added:
            out.append(SideChange(value=side.value, new=False, sources=added))
    return tuple(out)


def build_digest(
    digest: str,
    story: str,
    story_title: str,
    window: tuple[datetime, datetime],
    held: Iterable[tuple[str, Contradiction]],
    announced: Mapping[str, Contradiction | None],
) -> Digest:
    """The digest of the ``held`` updates ``(alert id, contradiction version)`` of one story.

    Per contradiction the latest held version is shown, compared with ``announced[contradiction
    id]``, the version before the first held one (None when unknown). Deterministic: entries are
    ordered by first seen, then id; alert ids are sorted."""
    by_id: dict[str, list[tuple[str, Contradiction]]] = {}
    for aid, c in held:
        by_id.setdefault(c.id, []).append((aid, c))
    entries: list[DigestEntry] = []
    for cid, items in by_id.items():
        latest = max((c for _, c in items), key=lambda c: c.version)
        first = min(c.version for _, c in items)
        before = announced.get(cid)
        entries.append(
            DigestEntry(
                contradiction=latest,
                from_version=before.version if before is not None else max(0, first - 1),
                alert_ids=tuple(sorted({a for a, _ in items})),
                changes=side_changes(before, latest),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    entries.sort(key=lambda e: (_utc(e.contradiction.first_seen) if e.contradiction.first_seen else far, e.contradiction.id))
    return Digest(id=digest, story=story, story_title=story_title, window_start=window[0], window_end=window[1],
                  entries=tuple(entries))


def baseline_versions(held: Sequence[Contradiction]) -> dict[str, int]:
    """For each contradiction among ``held``, the version just before its first held one: the one
    whose alert was the last announced on its own (or in an earlier digest)."""
    first: dict[str, int] = {}
    for c in held:
        first[c.id] = min(first.get(c.id, c.version), c.version)
    return {cid: v - 1 for cid, v in first.items()}


__all__ = [
    "Digest",
    "DigestEntry",
    "SideChange",
    "baseline_versions",
    "build_digest",
    "digest_id",
    "side_changes",
    "sources",
    "window_of",
]
