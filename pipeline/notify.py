"""Stage 7: raise an alert for a new or updated contradiction, at most once per dedupe key.

The dedupe key is ``stable_id("alert", contradiction id, version)``: a contradiction alerts once when
it first appears and once per update (a side or source added). The key is persisted in the alerts
index (``create``, which fails on a second attempt) *before* anything is sent, so a replayed event or
a second worker never posts the same message twice. The final status (sent, printed, failed with its
error) is written back, so failed alerts stay visible in the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from .alert import Alerter, AlertMessage
from .metrics import Metrics
from .search import claim_alert, finish_alert
from .settings import Settings
from .types import AlertRecord, Contradiction, stable_id

log = logging.getLogger("crosswire.alert")


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
    )
    if not claim_alert(client, s, record):
        metrics.alerts.labels(alerter.channel, "duplicate").inc()
        return None
    thread = _thread_of(client, s, c) if kind == "update" else None
    if thread:
        record = record.model_copy(update={"thread_ts": thread})
    result = alerter.send(AlertMessage(contradiction=c, story_title=story_title, kind=kind, thread_ts=thread))
    final = result.settle(record, clock())
    finish_alert(client, s, final)
    metrics.alerts.labels(result.channel, result.status).inc()
    if not result.ok:
        log.error("alert %s for contradiction %s failed: %s", final.id, c.id, result.error)
    return final
