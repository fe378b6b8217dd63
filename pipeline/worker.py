"""What a worker process needs besides faust: its effects (index, alert) and its start-up.

:class:`StoryEffects` is stages 6 and 7 for one linked article: it writes the article, its claims,
its story and the contradictions that changed, then raises alerts for contradictions that are new or
updated. Every write is idempotent; an alert's dedupe key is persisted before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from .alert import Alerter, make_alerter
from .documents import article_doc, claim_docs, contradiction_doc, story_doc
from .metrics import Metrics
from .notify import deliver, retry_due
from .search import SearchSink, make_client
from .settings import Settings
from .storystate import Event, StoryRecord
from .types import LinkedArticle

log = logging.getLogger("crosswire.worker")


class StoryEffects:
    """Index and alert. ``write_retry_s`` bounds the back-off between attempts when the search
    server is down: the call does not return until the documents are written, which stops the
    consumer (back-pressure) instead of buffering without bound or dropping data."""

    def __init__(
        self,
        s: Settings,
        *,
        client: Any,
        alerter: Alerter,
        metrics: Metrics,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        write_retry_s: float = 30.0,
    ) -> None:
        self.s = s
        self.client = client
        self.sink = SearchSink.from_settings(client, s)
        self.alerter = alerter
        self.metrics = metrics
        self.clock = clock
        self.write_retry_s = write_retry_s
        self._pending_watch: dict = {}  # the outbox sweep's memory of pending claims (see notify.retry_due)

    def actions(self, la: LinkedArticle, record: StoryRecord, changes: Sequence[Event]) -> list[dict]:
        s = self.s
        acts = [article_doc(la, self.clock(), index=s.index("articles"))]
        acts += claim_docs(la, index=s.index("claims"))
        acts.append(story_doc(record.story(), index=s.index("stories")))
        changed = {c.id for _, c in changes}
        acts += [contradiction_doc(c, index=s.index("contradictions")) for c in record.contradictions if c.id in changed]
        return acts

    def write(self, actions: list[dict]) -> None:
        """Write until every document landed (transient failures) — blocks while the server is down."""
        delay = 0.5
        pending = actions
        while True:
            t0 = time.perf_counter()
            result = self.sink.write(pending)
            self.metrics.stage_seconds.labels("index").observe(time.perf_counter() - t0)
            if not result.failed:
                for idx in {str(a["_index"]) for a in pending}:
                    self.metrics.es_docs.labels(idx.rsplit("-", 1)[-1], "ok").inc(sum(1 for a in pending if a["_index"] == idx))
                return
            transient = [e for e in result.errors if e.status is None or e.status in (429, 502, 503, 504)]
            self.metrics.es_errors.inc()
            if not transient:
                # Mapping or validation errors will not heal by retrying: log them and move on.
                for e in result.errors:
                    self.metrics.es_docs.labels(e.index.rsplit("-", 1)[-1], "error").inc()
                    log.error("index write rejected: %s %s: %s", e.index, e.id, e.reason)
                return
            failed_ids = {(e.index, e.id) for e in transient}
            pending = [a for a in pending if (a["_index"], a["_id"]) in failed_ids]
            log.warning("search server unavailable (%s); %d document(s) waiting, retry in %.0fs", transient[0].type, len(pending), delay)
            time.sleep(delay)
            delay = min(self.write_retry_s, delay * 2)

    def apply_sync(self, la: LinkedArticle, record: StoryRecord, changes: Sequence[Event]) -> None:
        self.metrics.articles.labels("index", "in").inc()
        self.write(self.actions(la, record, changes))
        self.metrics.articles.labels("index", "ok").inc()
        for kind, c in changes:
            self.metrics.contradictions.labels(c.kind, kind).inc()
            t0 = time.perf_counter()
            deliver(self.client, self.s, self.alerter, c, record.title, kind, metrics=self.metrics, clock=self.clock)
            self.metrics.stage_seconds.labels("alert").observe(time.perf_counter() - t0)

    async def apply(self, la: LinkedArticle, record: StoryRecord, changes: Sequence[Event], loop: asyncio.AbstractEventLoop) -> None:
        await loop.run_in_executor(None, self.apply_sync, la, record, changes)

    def retry_alerts(self) -> int:
        """Re-send failed alerts whose time has come and claimed ones whose worker died."""
        try:
            return retry_due(self.client, self.s, self.alerter, metrics=self.metrics, clock=self.clock, watch=self._pending_watch)
        except Exception:  # noqa: BLE001 - the search server may be down; the next round tries again
            log.warning("alert outbox sweep failed; will retry", exc_info=True)
            return 0


def run_worker(s: Settings) -> None:
    """Start a worker process: load the model once, prepare topics and indices, run faust."""
    from faust.worker import Worker

    from .aliases import AliasTable
    from .analyse import Analyser
    from .app import create_app
    from .kafka import ensure_topics
    from .nlp import load_nlp
    from .search import ensure_templates

    from .health import Health, serve
    from .logs import json_handler

    metrics = Metrics.create()
    health = Health()
    server = serve(metrics.registry, health, s.metrics_port)
    log.info("metrics, health and readiness on :%d (/metrics, /healthz, /readyz)", server.server_address[1])
    aliases = AliasTable.load(s.aliases_file)
    nlp = load_nlp(s.spacy_model, aliases)
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    effects = StoryEffects(s, client=client, alerter=make_alerter(s), metrics=metrics)
    from .linking import make_linker

    if s.log_format == "json":
        # faust hands app.conf.loghandlers to its logging set-up; the worker's own log calls pass
        # article and story ids as ``extra`` for the JSON lines
        app_loghandlers = [json_handler()]
    else:
        app_loghandlers = []
    app = create_app(
        s,
        analyser=Analyser(nlp, metrics=metrics, batch_size=s.batch_size),
        linker_factory=lambda state: make_linker(s, state),
        effects=effects,
        metrics=metrics,
        health=health,
    )
    app.conf.loghandlers = app_loghandlers
    if app_loghandlers:

        @app.task
        async def _json_only() -> None:
            # mode adds its own coloured console handler when it sets up logging; with JSON logs
            # every line must be JSON, so keep only ours once logging is configured
            root = logging.getLogger()
            for h in list(root.handlers):
                if h not in app_loghandlers:
                    root.removeHandler(h)
    Worker(app, loglevel=s.log_level, quiet=True).execute_from_commandline()


__all__ = ["StoryEffects", "run_worker"]
