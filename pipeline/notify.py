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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from .alert import Alerter, AlertMessage
from .metrics import Metrics
from .search import claim_alert, due_alerts, finish_alert, take_over_alert
from .settings import Settings
from .types import AlertRecord, Contradiction, stable_id

log = logging.getLogger("crosswire.alert")

#: Back-off of a failed delivery: 30 s, 1 min, 2 min, ... at most one hour.
RETRY_BASE_S = 30.0
RETRY_CAP_S = 3600.0


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


def _send(client: Any, s: Settings, alerter: Alerter, record: AlertRecord, c: Contradiction, *,
          metrics: Metrics, clock: Callable[[], datetime]) -> AlertRecord:
    """Send the claimed ``record`` and store its outcome."""
    thread = _thread_of(client, s, c) if record.kind == "update" else None
    if thread:
        record = record.model_copy(update={"thread_ts": thread})
    result = alerter.send(AlertMessage(contradiction=c, story_title=record.story_title or c.story, kind=record.kind, thread_ts=thread))
    now = clock()
    final = result.settle(record, now)
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
    finish_alert(client, s, final)
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
    if not claim_alert(client, s, record):
        metrics.alerts.labels(alerter.channel, "duplicate").inc()
        return None
    return _send(client, s, alerter, record, c, metrics=metrics, clock=clock)


def retry_due(client: Any, s: Settings, alerter: Alerter, *, metrics: Metrics, clock: Callable[[], datetime]) -> int:
    """Re-send what the outbox holds as due (see the module docstring). Returns how many were taken."""
    taken = 0
    for record, seq_no, term in due_alerts(client, s, clock(), pending_timeout_s=s.alert_pending_timeout_s):
        if not record.body:
            continue  # a record from before bodies were stored: nothing to rebuild the message from
        mine = record.model_copy(update={"status": "pending", "created": clock(), "next_attempt": None})
        if not take_over_alert(client, s, mine, seq_no, term):
            continue  # another worker took it
        taken += 1
        log.info("re-sending alert %s (was %s, %d attempt(s))", record.id, record.status, record.attempts)
        _send(client, s, alerter, mine, Contradiction.model_validate_json(record.body), metrics=metrics, clock=clock)
    return taken
