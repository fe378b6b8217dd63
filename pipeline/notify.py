"""Stage 7: raise an alert for a new or updated contradiction, at most once per dedupe key, and
never lose one.

The dedupe key is ``stable_id("alert", contradiction id, version)``: a contradiction alerts once when
it first appears and once per update (a side or source added). The alerts index is an outbox:

1. the record is written with op ``create`` (status ``pending``) *before* anything is sent, so a
   replayed event or a second worker never posts the same message twice;
2. the message is sent (a worker claims in line, while it indexes, and sends from a queue served
   by a thread of its own, so a slow or rate-limited Slack never holds indexing; the sender renews
   the claim just before sending), and the outcome written back (``sent``, ``printed``, or ``failed`` with its
   error and a ``next_attempt`` time), so failed alerts stay visible in the index;
3. :func:`retry_due` (run periodically by each worker) re-sends failed records whose time has come
   with exponential back-off, and pending records older than a timeout (their worker died between
   claiming and finishing). An optimistic take-over (``if_seq_no``) lets exactly one worker do it.

The record carries the contradiction as JSON, so a re-send needs nothing else.

A re-send whose earlier attempt may have reached Slack (a claim taken over from a dead worker, or a
record with attempts) says so to the alerter (``AlertMessage.posted_since``). With a bot token the
alerter first looks for the message in the channel or thread, by the alert id it carries as
message metadata, and counts a match as sent, so a worker killed after Slack accepted a post and
before ``sent`` was stored does not post it again. An incoming webhook cannot be asked: there that
window remains, and such an alert may be posted twice.

Digests (``alert_digest_window_s`` > 0). Time is cut into epoch-aligned windows. Within a window,
once a story has had ``alert_digest_min_updates`` update alerts, its further updates are *held*:
claimed like any alert (same dedupe key, op ``create``) but with status ``held``, the digest's id
``stable_id("digest", story, window start)`` in ``digest`` and the window's end in ``next_attempt``.
A new contradiction's first alert is never held. When the window has ended, :func:`flush_digests`
(part of :func:`retry_due`) composes one digest from the held records, writes it as an outbox record
of its own (kind ``digest``, the digest as JSON in ``body``, op ``create``) and only then sends it;
the held records are then marked ``sent`` (or keep waiting, or ``failed``, with the digest's error).
Every step is redone by the next sweep if a worker dies in between, and the deterministic ids make a
replayed event or a second worker a no-op.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from elastic_transport import TransportError
from elasticsearch import ApiError

from .alert import TAKEN_OVER, Alerter, AlertMessage
from .digest import Digest, baseline_versions, build_digest, digest_id, window_of
from .metrics import Metrics
from .search import (
    Lease,
    claim_alert_record,
    count_alerts,
    due_alerts,
    due_held,
    finish_alert,
    get_alert,
    held_alerts,
    story_thread,
    take_over_alert,
)
from .settings import Settings
from .types import AlertRecord, Contradiction, stable_id

log = logging.getLogger("crosswire.alert")

#: Back-off of a failed delivery: 30 s, 1 min, 2 min, ... at most one hour.
RETRY_BASE_S = 30.0
RETRY_CAP_S = 3600.0


_TRANSIENT = (429, 502, 503, 504)


def persist(fn: Callable[..., Any], *args: Any, metrics: Metrics | None = None, sleep: Callable[[float], None] = time.sleep,
            cap_s: float = 2.0, **kwargs: Any) -> Any:
    """Call an outbox read or write until the search server answers: connection errors, timeouts
    and 429/5xx are retried with back-off (the caller blocks: back-pressure), other errors raise.
    An alert must never be posted and then lose its record because the server blinked."""
    delay = 0.5
    while True:
        try:
            return fn(*args, **kwargs)
        except (TransportError, ApiError) as e:
            if isinstance(e, ApiError) and e.status_code not in _TRANSIENT:
                raise
            if metrics is not None:
                metrics.es_errors.inc()
            log.warning("alert outbox: search server unavailable (%s); retry in %.1fs", type(e).__name__, delay)
            sleep(delay)
            delay = min(cap_s, delay * 2)


def alert_id(c: Contradiction) -> str:
    return stable_id("alert", c.id, str(c.version))


def _thread_of(client: Any, s: Settings, c: Contradiction) -> str | None:
    """The Slack ``ts`` of the contradiction's first alert (version 1), when it was posted with a
    bot token; None otherwise (then an update is a post of its own)."""
    from elasticsearch import NotFoundError

    first = c.model_copy(update={"version": 1})
    try:
        doc = client.get(index=s.index("alerts"), id=alert_id(first))
    except NotFoundError:
        return None
    return doc["_source"].get("ts")


def posted_since(earlier: AlertRecord | None, s: Settings) -> datetime | None:
    """The earliest time an earlier delivery of this alert may have reached Slack, or None when
    none can have: a ``pending`` claim being taken over (its worker died mid-delivery) or a record
    with attempts. A sender renews ``created`` before each retry and then waits at most one HTTP
    timeout plus one back-off, so its last post is no earlier than this."""
    if earlier is None or earlier.created is None or not (earlier.status == "pending" or earlier.attempts > 0):
        return None
    return earlier.created - timedelta(seconds=s.alert_timeout_s + s.alert_max_wait_s)


def _message(client: Any, s: Settings, record: AlertRecord, *, metrics: Metrics) -> AlertMessage:
    """The message ``record`` stands for, rebuilt from what the outbox holds (its ``body``)."""
    if not record.body:
        raise ValueError(f"alert {record.id} has no body to send")
    if record.kind == "digest":
        digest = Digest.model_validate_json(record.body)
        return AlertMessage(None, record.story_title or digest.story_title, "digest", thread_ts=record.thread_ts,
                            alert_id=record.id, digest=digest)
    c = Contradiction.model_validate_json(record.body)
    thread = persist(_thread_of, client, s, c, metrics=metrics) if record.kind == "update" else None
    return AlertMessage(c, record.story_title or c.story, record.kind, thread_ts=thread, alert_id=record.id)


def _send(client: Any, s: Settings, alerter: Alerter, record: AlertRecord, lease: Lease, *,
          metrics: Metrics, clock: Callable[[], datetime], earlier: AlertRecord | None = None) -> AlertRecord | None:
    """Send the claimed ``record`` (this worker holds ``lease``) and store its outcome. Before each
    retry the claim is renewed, so the outbox sweep never takes over a delivery that is still
    going (it only takes claims not renewed for ``alert_pending_timeout_s``). ``earlier`` is the
    record as it was before this worker claimed it, when it had been tried before. Returns None
    when another worker took the alert over meanwhile."""
    wait = persist(_first_alert_pending, client, s, record, clock(), metrics=metrics)
    if wait is not None:
        return defer(client, s, record, lease, wait, "deferred: this contradiction's first alert is not delivered yet",
                     metrics=metrics, channel=alerter.channel)
    message = _message(client, s, record, metrics=metrics)
    if message.thread_ts and record.thread_ts != message.thread_ts:
        record = record.model_copy(update={"thread_ts": message.thread_ts})
    if earlier is not None and earlier.status == "pending" and record.attempts < 1:
        # a claim taken over from a dead worker: count its attempt, whose outcome is unknown, so
        # that a later round still looks for it if this one cannot
        record = record.model_copy(update={"attempts": 1})
    held = [lease, record]

    def still_mine() -> bool:
        renewed = held[1].model_copy(update={"created": clock()})
        new = persist(take_over_alert, client, s, renewed, held[0], metrics=metrics)
        if new is None:
            return False
        held[0], held[1] = new, renewed
        return True

    since = posted_since(earlier, s)
    result = alerter.send(dataclasses.replace(message, still_mine=still_mine, posted_since=since))
    if result.error == TAKEN_OVER:
        metrics.alerts.labels(result.channel, "taken_over").inc()
        return None
    now = clock()
    created = held[1].created
    if result.attempts == 0 and not result.ok and since is not None and earlier is not None:
        # nothing was posted (the look for the earlier post failed): keep the earlier post's time,
        # so the next attempt still looks far enough back
        created = earlier.created
    final = result.settle(record.model_copy(update={"created": created}), now)
    if result.ok:
        final = final.model_copy(update={"next_attempt": None})
    elif final.attempts < s.alert_max_attempts:
        rounds = -(-final.attempts // (s.alert_max_retries + 1))  # deliveries so far, each of up to max_retries+1 posts
        delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, rounds - 1))
        final = final.model_copy(update={"next_attempt": now + timedelta(seconds=delay)})
        log.warning("alert %s (%s) failed (%s); next attempt at %s", final.id, final.kind, result.error, final.next_attempt,
                    extra={"alert": final.id, "contradiction": final.contradiction, "story": final.story})
    else:
        final = final.model_copy(update={"next_attempt": None})
        log.error("alert %s (%s) failed for good after %d attempts: %s", final.id, final.kind, final.attempts, result.error,
                  extra={"alert": final.id, "contradiction": final.contradiction, "story": final.story})
    if not persist(finish_alert, client, s, final, held[0], metrics=metrics):
        log.warning("alert %s was taken over before its outcome was stored", final.id, extra={"alert": final.id})
    metrics.alerts.labels(result.channel, "recovered" if result.recovered else result.status).inc()
    if message.digest is not None:
        _settle_members(client, s, final, message.digest, metrics=metrics)
    return final


def _first_alert_pending(client: Any, s: Settings, record: AlertRecord, now: datetime) -> datetime | None:
    """For an update: when its contradiction's first alert (version 1) is still to be delivered
    (claimed by some worker, or failed and due again), the time to try the update again, so that
    it never reaches Slack before the alert it updates (with a bot token it is threaded under it).
    None when the update may go now."""
    if record.kind != "update" or not record.body:
        return None
    c = Contradiction.model_validate_json(record.body)
    found = get_alert(client, s, alert_id(c.model_copy(update={"version": 1})))
    if found is None:
        return None
    first = found[0]
    if first.status == "pending":
        return now + timedelta(seconds=2 * s.alert_retry_interval_s)
    if first.status == "failed" and first.next_attempt is not None:
        return max(first.next_attempt, now) + timedelta(seconds=s.alert_retry_interval_s)
    return None


def defer(client: Any, s: Settings, record: AlertRecord, lease: Lease, until: datetime, reason: str, *,
          metrics: Metrics, channel: str) -> AlertRecord | None:
    """Store a claimed alert, unsent, as due again at ``until`` (status ``failed`` with
    ``next_attempt``; its attempts unchanged, as nothing was posted): the outbox sweep sends it
    then. Returns the stored record, or None when another worker took the claim over meanwhile."""
    final = record.model_copy(update={"status": "failed", "error": reason, "next_attempt": until})
    if not persist(finish_alert, client, s, final, lease, metrics=metrics):
        return None
    metrics.alerts.labels(channel, "deferred").inc()
    log.info("alert %s %s; due again at %s", record.id, reason, until, extra={"alert": record.id, "story": record.story})
    return final


def _hold_for(client: Any, s: Settings, story: str, now: datetime) -> tuple[str, datetime] | None:
    """``(digest id, window end)`` when an update of ``story`` at ``now`` is to be held for a
    digest, else None (send it now)."""
    start, end = window_of(now, s.alert_digest_window_s)
    if s.alert_digest_min_updates > 0:
        sent = count_alerts(client, s, story=story, kind="update", since=start, until=end)
        if sent < s.alert_digest_min_updates:
            return None
    return digest_id(story, start), end


@dataclasses.dataclass(frozen=True)
class Claimed:
    """An alert this worker has claimed in the outbox (status ``pending``) and is to send: the
    record, the lease that proves the claim, and the ``failed`` record it took over, if any."""

    record: AlertRecord
    lease: Lease
    earlier: AlertRecord | None = None


def claim(
    client: Any,
    s: Settings,
    alerter: Alerter,
    c: Contradiction,
    story_title: str,
    kind: Literal["new", "update"],
    *,
    metrics: Metrics,
    clock: Callable[[], datetime],
    take_failed: bool = True,
) -> Claimed | AlertRecord | None:
    """Persist the alert's outbox record under its dedupe key, before anything is sent. Returns the
    claim to send (:class:`Claimed`), the record itself when the update is held for a digest, or
    None when the key was already claimed (a replay or another worker: nothing to send).
    ``take_failed=False`` (workers, which send later from a queue) leaves a record that failed
    before to the outbox sweep, which re-sends it on its back-off schedule and knows its history."""
    now = clock()
    record = AlertRecord(
        id=alert_id(c),
        contradiction=c.id,
        story=c.story,
        kind=kind,
        status="pending",
        channel=alerter.channel,
        created=now,
        story_title=story_title,
        body=c.model_dump_json(),
    )
    if kind == "update" and s.alert_digest_window_s > 0:
        hold = persist(_hold_for, client, s, c.story, now, metrics=metrics)
        if hold is not None:
            record = record.model_copy(update={"status": "held", "digest": hold[0], "next_attempt": hold[1]})
    claimed = persist(claim_alert_record, client, s, record, metrics=metrics, take_failed=take_failed)
    if claimed is None:
        metrics.alerts.labels(alerter.channel, "duplicate").inc()
        return None
    lease, earlier = claimed
    if earlier is not None:
        record = record.model_copy(update={"attempts": max(record.attempts, earlier.attempts)})
    if record.status == "held":
        metrics.alerts.labels(alerter.channel, "held").inc()
        log.info("alert %s held for digest %s until %s", record.id, record.digest, record.next_attempt,
                 extra={"alert": record.id, "contradiction": c.id, "story": c.story})
        return record
    return Claimed(record, lease, earlier)


def send_claimed(client: Any, s: Settings, alerter: Alerter, claimed: Claimed, *, metrics: Metrics,
                 clock: Callable[[], datetime]) -> AlertRecord | None:
    """Send an alert claimed a while ago (it waited in the worker's sender queue). The claim is
    renewed first, with its lease: if the outbox sweep of another worker took it over meanwhile
    (it looked abandoned), this returns None and sends nothing, so it is never posted twice. The
    renewal also restarts ``created``, which bounds when this delivery may reach Slack."""
    mine = claimed.record.model_copy(update={"created": clock()})
    lease = persist(take_over_alert, client, s, mine, claimed.lease, metrics=metrics)
    if lease is None:
        metrics.alerts.labels(alerter.channel, "taken_over").inc()
        log.info("alert %s was taken over by the outbox sweep before it was sent", mine.id, extra={"alert": mine.id})
        return None
    return _send(client, s, alerter, mine, lease, metrics=metrics, clock=clock, earlier=claimed.earlier)


def deliver(
    client: Any,
    s: Settings,
    alerter: Alerter,
    c: Contradiction,
    story_title: str,
    kind: Literal["new", "update"],
    *,
    metrics: Metrics,
    clock: Callable[[], datetime],
) -> AlertRecord | None:
    """Claim the alert's dedupe key, send it at once, store the outcome. Returns the final record
    (status ``held`` when the update waits for a digest), or None when the key was already claimed
    (nothing sent). Workers claim in line and send from a queue instead (:func:`claim`,
    :func:`send_claimed`)."""
    got = claim(client, s, alerter, c, story_title, kind, metrics=metrics, clock=clock)
    if not isinstance(got, Claimed):
        return got
    return _send(client, s, alerter, got.record, got.lease, metrics=metrics, clock=clock, earlier=got.earlier)


def retry_due(
    client: Any,
    s: Settings,
    alerter: Alerter,
    *,
    metrics: Metrics,
    clock: Callable[[], datetime],
    watch: dict[str, tuple[Lease, float]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    queued: Callable[[], Collection[str]] = frozenset,
) -> int:
    """Re-send what the outbox holds as due (see the module docstring), then send the digests whose
    window has ended (:func:`flush_digests`). Returns how many were taken.

    ``watch`` (kept by the caller between rounds) guards pending claims: one is taken over only
    after this sweeper has seen it unchanged for ``alert_pending_timeout_s`` on its own clock. A
    claim's ``created`` alone is not enough: after a search-server outage every in-flight claim
    looks old, while its sender is about to store the outcome. Without ``watch``, ``created`` decides.
    ``queued`` gives the ids waiting in this process's own sender queue: they are not abandoned,
    however long they wait (their sender renews the claim before sending)."""
    taken = 0
    now_m = monotonic()
    pending_seen: set[str] = set()
    mine_queued = queued()
    for record, lease in due_alerts(client, s, clock(), pending_timeout_s=s.alert_pending_timeout_s, exclude=mine_queued):
        # no body: a record from before bodies were stored, nothing to rebuild the message from;
        # queued here: claimed by this process and about to be sent (the query skips them too)
        if not record.body or record.id in mine_queued:
            continue
        if record.status == "pending" and watch is not None:
            pending_seen.add(record.id)
            first = watch.get(record.id)
            if first is None or first[0] != lease:
                watch[record.id] = (lease, now_m)
                continue
            if now_m - first[1] < s.alert_pending_timeout_s:
                continue
        mine = record.model_copy(update={"status": "pending", "created": clock(), "next_attempt": None})
        new = take_over_alert(client, s, mine, lease)
        if new is None:
            continue  # another worker took it
        taken += 1
        if watch is not None:
            watch.pop(record.id, None)
        log.info("re-sending alert %s (was %s, %d attempt(s))", record.id, record.status, record.attempts, extra={"alert": record.id})
        _send(client, s, alerter, mine, new, metrics=metrics, clock=clock, earlier=record)
    if watch is not None:
        for rid in [r for r in watch if r not in pending_seen]:
            del watch[rid]
    return taken + flush_digests(client, s, alerter, metrics=metrics, clock=clock)


# ----------------------------------------------------------------------------------------- digests


def flush_digests(client: Any, s: Settings, alerter: Alerter, *, metrics: Metrics, clock: Callable[[], datetime]) -> int:
    """Send each digest whose held updates are due (their window has ended), once; and bring held
    updates in line with a digest already sent or in flight (after a crash in between). Returns
    how many digests were sent (or tried). Runs whatever ``alert_digest_window_s`` is now, so that
    updates held before digests were turned off still go out."""
    sent = 0
    seen: set[str] = set()
    for member, _lease in due_held(client, s, clock()):
        if member.digest is None or member.digest in seen:
            continue
        seen.add(member.digest)
        if _flush(client, s, alerter, member.digest, member.story, metrics=metrics, clock=clock):
            sent += 1
    return sent


def _compose(client: Any, s: Settings, did: str, members: Sequence[AlertRecord]) -> Digest:
    """The digest of ``members`` (held updates of one story), each contradiction compared with its
    version before the first held one, read back from that version's own outbox record."""
    held = [(m.id, Contradiction.model_validate_json(m.body)) for m in members if m.body]
    contradictions = [c for _, c in held]
    announced: dict[str, Contradiction | None] = {}
    for cid, version in baseline_versions(contradictions).items():
        sample = next(c for c in contradictions if c.id == cid)
        found = persist(get_alert, client, s, alert_id(sample.model_copy(update={"version": version}))) if version >= 1 else None
        announced[cid] = Contradiction.model_validate_json(found[0].body) if found and found[0].body else None
    starts = [m.created for m in members if m.created is not None]
    ends = [m.next_attempt for m in members if m.next_attempt is not None]
    window = (min(starts) if starts else ends[0], max(ends) if ends else starts[-1])
    first = members[0]
    return build_digest(did, first.story, first.story_title or first.story, window, held, announced)


def _flush(client: Any, s: Settings, alerter: Alerter, did: str, story: str, *, metrics: Metrics,
           clock: Callable[[], datetime]) -> bool:
    """Send the digest ``did`` of ``story`` if nobody has; else reconcile its held updates with it.
    True when this call sent (or tried to send) it."""
    now = clock()
    members = held_alerts(client, s, did, story)
    existing = get_alert(client, s, did)
    if existing is None:
        if not members:
            return False
        digest = _compose(client, s, did, [m for m, _ in members])
        if len(digest.entries) == 1:
            thread = persist(_thread_of, client, s, digest.entries[0].contradiction, metrics=metrics)
        else:
            thread = persist(story_thread, client, s, digest.story, metrics=metrics)
        record = AlertRecord(id=did, contradiction="", story=digest.story, kind="digest", status="pending",
                             channel=alerter.channel, created=now, story_title=digest.story_title,
                             body=digest.model_dump_json(), thread_ts=thread)
        claimed = persist(claim_alert_record, client, s, record, metrics=metrics)
        if claimed is None:
            return False  # another worker composed it first
        # the digest (with its list of updates) is persisted: push its updates out of the due list
        # while it is in flight; if this worker dies, they come due again and are reconciled
        _cover(client, s, members, digest, now + timedelta(seconds=s.alert_pending_timeout_s), metrics=metrics)
        log.info("sending digest %s of %d update(s) for story %s", did, digest.updates, digest.story,
                 extra={"alert": did, "story": digest.story})
        _send(client, s, alerter, record, claimed[0], metrics=metrics, clock=clock)
        return True
    record = existing[0]
    digest = Digest.model_validate_json(record.body) if record.body else None
    carried = [(m, lease) for m, lease in members if digest is not None and m.id in digest.alert_ids]
    late = [(m, lease) for m, lease in members if digest is None or m.id not in digest.alert_ids]
    if digest is not None:
        if record.status == "pending":
            _cover(client, s, carried, digest, now + timedelta(seconds=s.alert_pending_timeout_s), metrics=metrics)
        else:
            _settle_members(client, s, record, digest, metrics=metrics, members=carried)
    for m, lease in late:
        # held after the digest was composed (a race at the window's end): it goes on its own
        mine = m.model_copy(update={"status": "pending", "created": clock(), "next_attempt": None, "digest": None})
        new = persist(take_over_alert, client, s, mine, lease, metrics=metrics)
        if new is not None:
            log.info("alert %s missed digest %s; sending it on its own", m.id, did, extra={"alert": m.id, "story": m.story})
            _send(client, s, alerter, mine, new, metrics=metrics, clock=clock)
    return False


def _cover(client: Any, s: Settings, members: Sequence[tuple[AlertRecord, Lease]], digest: Digest, until: datetime, *,
           metrics: Metrics) -> None:
    """Move the digest's held updates out of the due list until ``until``."""
    for m, lease in members:
        if m.id in digest.alert_ids and (m.next_attempt is None or m.next_attempt < until):
            persist(take_over_alert, client, s, m.model_copy(update={"next_attempt": until}), lease, metrics=metrics)


def _settle_members(client: Any, s: Settings, final: AlertRecord, digest: Digest, *, metrics: Metrics,
                    members: Sequence[tuple[AlertRecord, Lease]] | None = None) -> None:
    """Give the held updates a digest carries the digest's outcome: ``sent`` (or ``printed``) with
    its time and Slack ``ts``; still held until the digest's next attempt; or ``failed`` with its
    error once it was given up."""
    if members is None:
        held = persist(held_alerts, client, s, digest.id, digest.story, metrics=metrics)
        members = [(m, lease) for m, lease in held if m.id in digest.alert_ids]
    for m, lease in members:
        if final.status in ("sent", "printed"):
            update: dict[str, Any] = {"status": final.status, "sent": final.sent, "ts": final.ts, "thread_ts": final.thread_ts,
                                      "channel": final.channel, "error": None, "next_attempt": None}
        elif final.status == "failed" and final.next_attempt is not None:
            update = {"next_attempt": final.next_attempt, "error": f"waiting for digest {final.id}: {final.error}"}
        elif final.status == "failed":
            update = {"status": "failed", "next_attempt": None, "error": f"digest {final.id} failed: {final.error}"}
        else:
            continue  # the digest is in flight
        persist(take_over_alert, client, s, m.model_copy(update=update), lease, metrics=metrics)


__all__ = ["Claimed", "alert_id", "claim", "defer", "deliver", "send_claimed", "flush_digests", "persist", "posted_since", "retry_due"]
