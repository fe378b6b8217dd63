"""Stage 7: raise an alert for a new or updated contradiction, at most once per dedupe key, and
never lose one.

The dedupe key is ``stable_id("alert", contradiction id, version)``: a contradiction alerts once when
it first appears and once per update (a side or source added). The alerts index is an outbox:

1. the record is written with op ``create`` (status ``pending``) *before* anything is sent, so a
   replayed event or a second worker never posts the same message twice;
2. the message is sent, and the outcome written back (``sent``, ``printed``, or ``failed`` with its
   error and a ``next_attempt`` time), so failed alerts stay visible in the index;
3. :func:`retry_due` (run periodically by each worker) re-sends failed records whose time has come
   with exponential back-off, and pending records older than a timeout (their worker died between
   claiming and finishing). An optimistic take-over (``if_seq_no``) lets exactly one worker do it.

The record carries the contradiction as JSON, so a re-send needs nothing else. The one window left
is a crash after Slack accepted a message and before step 2 finished: then it is re-sent once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from elastic_transport import TransportError
from elasticsearch import ApiError

from .alert import TAKEN_OVER, Alerter, AlertMessage
from .metrics import Metrics
from .search import Lease, claim_alert, due_alerts, finish_alert, take_over_alert
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


def _send(client: Any, s: Settings, alerter: Alerter, record: AlertRecord, lease: Lease, c: Contradiction, *,
          metrics: Metrics, clock: Callable[[], datetime]) -> AlertRecord | None:
    """Send the claimed ``record`` (this worker holds ``lease``) and store its outcome. Before each
    retry the claim is renewed, so the outbox sweep never takes over a delivery that is still
    going (it only takes claims not renewed for ``alert_pending_timeout_s``). Returns None when
    another worker took the alert over meanwhile."""
    held = [lease, record]

    def still_mine() -> bool:
        renewed = held[1].model_copy(update={"created": clock()})
        new = persist(take_over_alert, client, s, renewed, held[0], metrics=metrics)
        if new is None:
            return False
        held[0], held[1] = new, renewed
        return True

    thread = persist(_thread_of, client, s, c, metrics=metrics) if record.kind == "update" else None
    if thread:
        record = record.model_copy(update={"thread_ts": thread})
    result = alerter.send(AlertMessage(contradiction=c, story_title=record.story_title or c.story, kind=record.kind,
                                       thread_ts=thread, still_mine=still_mine))
    if result.error == TAKEN_OVER:
        metrics.alerts.labels(result.channel, "taken_over").inc()
        return None
    now = clock()
    final = result.settle(record.model_copy(update={"created": held[1].created}), now)
    if result.ok:
        final = final.model_copy(update={"next_attempt": None})
    elif final.attempts < s.alert_max_attempts:
        rounds = -(-final.attempts // (s.alert_max_retries + 1))  # deliveries so far, each of up to max_retries+1 posts
        delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, rounds - 1))
        final = final.model_copy(update={"next_attempt": now + timedelta(seconds=delay)})
        log.warning("alert %s for contradiction %s failed (%s); next attempt at %s", final.id, c.id, result.error, final.next_attempt,
                    extra={"alert": final.id, "contradiction": c.id, "story": c.story})
    else:
        final = final.model_copy(update={"next_attempt": None})
        log.error("alert %s for contradiction %s failed for good after %d attempts: %s", final.id, c.id, final.attempts, result.error,
                  extra={"alert": final.id, "contradiction": c.id, "story": c.story})
    if not persist(finish_alert, client, s, final, held[0], metrics=metrics):
        log.warning("alert %s was taken over before its outcome was stored", final.id, extra={"alert": final.id})
    metrics.alerts.labels(result.channel, result.status).inc()
    return final


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
    """Claim the alert's dedupe key, send it, store the outcome. Returns the final record, or None
    when the key was already claimed (nothing sent)."""
    record = AlertRecord(
        id=alert_id(c),
        contradiction=c.id,
        story=c.story,
        kind=kind,
        status="pending",
        channel=alerter.channel,
        created=clock(),
        story_title=story_title,
        body=c.model_dump_json(),
    )
    lease = persist(claim_alert, client, s, record, metrics=metrics)
    if lease is None:
        metrics.alerts.labels(alerter.channel, "duplicate").inc()
        return None
    return _send(client, s, alerter, record, lease, c, metrics=metrics, clock=clock)


def retry_due(
    client: Any,
    s: Settings,
    alerter: Alerter,
    *,
    metrics: Metrics,
    clock: Callable[[], datetime],
    watch: dict[str, tuple[Lease, float]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Re-send what the outbox holds as due (see the module docstring). Returns how many were taken.

    ``watch`` (kept by the caller between rounds) guards pending claims: one is taken over only
    after this sweeper has seen it unchanged for ``alert_pending_timeout_s`` on its own clock. A
    claim's ``created`` alone is not enough: after a search-server outage every in-flight claim
    looks old, while its sender is about to store the outcome. Without ``watch``, ``created`` decides."""
    taken = 0
    now_m = monotonic()
    pending_seen: set[str] = set()
    for record, lease in due_alerts(client, s, clock(), pending_timeout_s=s.alert_pending_timeout_s):
        if not record.body:
            continue  # a record from before bodies were stored: nothing to rebuild the message from
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
        _send(client, s, alerter, mine, new, Contradiction.model_validate_json(record.body), metrics=metrics, clock=clock)
    if watch is not None:
        for rid in [r for r in watch if r not in pending_seen]:
            del watch[rid]
    return taken
