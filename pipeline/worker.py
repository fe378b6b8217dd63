"""What a worker process needs besides faust: its effects (index, alert) and its start-up.

:class:`StoryEffects` is stages 6 and 7 for a batch of linked articles: it writes the articles, their
claims, their stories and the contradictions that changed, then claims an alert for each
contradiction that is new or updated. Every write is idempotent; an alert's dedupe key is persisted
(claimed) in line, before the batch's table writes, and the message is sent by :class:`AlertSender`,
a thread of its own, so Slack's pace (about one message per second) never holds indexing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from .alert import Alerter, make_alerter
from .documents import article_doc, claim_docs, contradiction_doc, story_doc
from .metrics import Metrics
from .notify import Claimed, claim, defer, retry_due, send_claimed
from .search import SearchSink, make_client
from .settings import Settings
from .storystate import Event, StoryRecord
from .types import LinkedArticle

log = logging.getLogger("crosswire.worker")


class AlertSender:
    """Sends claimed alerts in claim order from one daemon thread (order matters: an update is
    threaded under its contradiction's first post; :func:`pipeline.notify._send` also holds an
    update back while that first alert is undelivered anywhere).

    Nothing is lost if the process dies with alerts queued: their outbox records are ``pending``
    and the outbox sweep of any worker re-sends them after ``alert_pending_timeout_s``. This
    process's own sweep skips the ids still in its queue (:meth:`queued`). :meth:`stop` lets the
    delivery in flight finish (so its outcome is stored) and sends nothing more."""

    def __init__(self, send: Callable[[Claimed], object], *, metrics: Metrics | None = None) -> None:
        self._send = send
        self._metrics = metrics
        self._queue: queue.Queue[Claimed | None] = queue.Queue()  # None wakes the thread to stop
        self._ids: Counter[str] = Counter()  # queued or being sent (an id can be queued twice)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def put(self, claimed: Claimed) -> None:
        with self._lock:
            self._ids[claimed.record.id] += 1
            self._gauge()
            if not self._stopping.is_set() and (self._thread is None or not self._thread.is_alive()):
                thread = threading.Thread(target=self._run, name="crosswire-alert-sender", daemon=True)
                thread.start()  # if this raises, the id stays counted, but queued() is empty without a thread
                self._thread = thread
        self._queue.put(claimed)

    def alive(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def queued(self) -> frozenset[str]:
        """Ids claimed by this process and not yet settled; empty when no sender thread runs (then
        nobody here will send them, and the outbox sweep must be free to take them over)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                return frozenset()
            return frozenset(self._ids)

    def pending(self) -> int:
        with self._lock:
            return sum(self._ids.values())

    def join(self, timeout_s: float) -> bool:
        """Wait until the queue is empty (or ``timeout_s`` passed); True when it is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.pending():
                return True
            if not self.alive():
                return False
            time.sleep(0.01)
        return not self.pending()

    def stop(self, timeout_s: float) -> int:
        """Finish the delivery in flight (at most ``timeout_s``) and take nothing more from the
        queue. Returns how many alerts stay unsent: they stay claimed in the outbox, and the sweep
        of whichever worker runs next sends them."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout_s)
        return self.pending()

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.alert_queue.set(sum(self._ids.values()))

    def _run(self) -> None:
        while not self._stopping.is_set():
            claimed = self._queue.get()
            if claimed is None or self._stopping.is_set():
                if claimed is not None:
                    self._queue.put(claimed)  # left for the record: it stays claimed (pending)
                return
            try:
                self._send(claimed)
            except BaseException:  # noqa: BLE001 - the record stays pending; the outbox sweep re-sends it
                log.exception("sending alert %s failed; the outbox sweep will retry it", claimed.record.id,
                              extra={"alert": claimed.record.id})
            finally:
                with self._lock:
                    self._ids[claimed.record.id] -= 1
                    if self._ids[claimed.record.id] <= 0:
                        del self._ids[claimed.record.id]
                    self._gauge()


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
        self.sender = AlertSender(self._send, metrics=metrics)
        self._paused_until: datetime | None = None  # set when a delivery failed and is due again

    def _send(self, claimed: Claimed) -> None:
        """Send one queued alert. After a delivery that failed and was scheduled again, the alerts
        queued behind it are not tried one by one (each would run the whole retry policy against a
        Slack that is down): they are deferred to the same time, and the outbox sweep paces them."""
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            defer(self.client, self.s, claimed.record, claimed.lease, self._paused_until,
                  "deferred: the delivery before it failed", metrics=self.metrics, channel=self.alerter.channel)
            return
        t0 = time.perf_counter()
        final = send_claimed(self.client, self.s, self.alerter, claimed, metrics=self.metrics, clock=self.clock)
        self.metrics.stage_seconds.labels("alert").observe(time.perf_counter() - t0)
        if final is not None and final.status == "failed" and final.next_attempt is not None and final.attempts > claimed.record.attempts:
            self._paused_until = final.next_attempt  # it was tried and failed (not merely deferred)
        elif final is not None and final.status in ("sent", "printed"):
            self._paused_until = None

    def actions(self, batch: Sequence[tuple[LinkedArticle, StoryRecord, Sequence[Event]]]) -> list[dict]:
        """The documents one batch writes: each article and its claims, and the LAST state of each
        story and of each contradiction that changed (a story seen twice in a batch is written once)."""
        s = self.s
        now = self.clock()
        acts: list[dict] = []
        final: dict[str, StoryRecord] = {}
        changed: dict[str, set[str]] = {}
        for la, record, changes in batch:
            acts.append(article_doc(la, now, index=s.index("articles")))
            acts += claim_docs(la, index=s.index("claims"))
            final[record.id] = record
            changed.setdefault(record.id, set()).update(c.id for _, c in changes)
        for sid, record in final.items():
            acts.append(story_doc(record.story(), index=s.index("stories")))
            acts += [contradiction_doc(c, index=s.index("contradictions")) for c in record.contradictions if c.id in changed[sid]]
        # at-least-once replays can put one article twice in a batch: one write per document id
        unique = {(a["_index"], a["_id"]): a for a in acts}
        return list(unique.values())

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

    def apply_sync(self, batch: Sequence[tuple[LinkedArticle, StoryRecord, Sequence[Event]]]) -> None:
        """Index a batch in one bulk request, then claim its alerts in order and queue them for the
        sender thread. Replaying a batch (after a crash or an infrastructure error) rewrites the same
        documents and claims nothing that was already claimed in the outbox."""
        if not batch:
            return
        self.metrics.articles.labels("index", "in").inc(len(batch))
        self.write(self.actions(batch))
        self.metrics.articles.labels("index", "ok").inc(len(batch))
        for la, record, changes in batch:
            for kind, c in changes:
                self.metrics.contradictions.labels(c.kind, kind).inc()
                got = claim(self.client, self.s, self.alerter, c, record.title, kind, metrics=self.metrics, clock=self.clock,
                            take_failed=False)
                if isinstance(got, Claimed):
                    self.sender.put(got)

    async def apply(self, batch: Sequence[tuple[LinkedArticle, StoryRecord, Sequence[Event]]], loop: asyncio.AbstractEventLoop) -> None:
        await loop.run_in_executor(None, self.apply_sync, batch)

    def retry_alerts(self) -> int:
        """Re-send failed alerts whose time has come and claimed ones whose worker died."""
        try:
            return retry_due(self.client, self.s, self.alerter, metrics=self.metrics, clock=self.clock, watch=self._pending_watch,
                             queued=self.sender.queued)
        except Exception:  # noqa: BLE001 - the search server may be down; the next round tries again
            log.warning("alert outbox sweep failed; will retry", exc_info=True)
            return 0


def service_worker_class() -> type:
    """faust's :class:`~faust.worker.Worker` without its terminal spinner.

    At log levels of WARN and above faust sets the *root* logger to DEBUG so that a spinner handler
    can turn on every record. It leaves it there after start-up, with no terminal and once the
    spinner has stopped, so every ``log.debug`` call of aiokafka, faust and mode built a
    ``LogRecord`` that no handler wrote: about 3% of the GIL under load. The root logger keeps the
    level ``configure_logging`` gave it."""
    from faust.worker import Worker

    class ServiceWorker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            self.spinner = None

    return ServiceWorker


def run_worker(s: Settings) -> None:
    """Start a worker process: load the model once, prepare topics and indices, run faust."""
    from .aliases import AliasTable
    from .analyse import Analyser
    from .app import create_app
    from .kafka import ensure_topics
    from .nlp import load_nlp
    from .search import ensure_templates

    from .health import Health, serve
    from .logs import configure_logging, logging_config
    from .memory import limit_arenas

    configure_logging(s.log_format, s.log_level)  # JSON from the first line when JSON is chosen
    # before any thread starts: each thread that allocates would otherwise get an arena of its own
    limit_arenas(s.malloc_arenas)
    # spaCy runs in an executor thread and holds the GIL for long stretches; the event loop and
    # faust's consumer thread wait up to one switch interval for it each time they wake up.
    # 1 ms (default 5) keeps message handling responsive; spaCy loses well under 1% to it.
    sys.setswitchinterval(0.001)

    metrics = Metrics.create()
    health = Health()
    server = serve(metrics.registry, health, s.metrics_port)
    log.info("metrics, health and readiness on :%d (/metrics, /healthz, /readyz)", server.server_address[1])
    aliases = AliasTable.load(s.aliases_file)
    nlp = load_nlp(s.spacy_model, aliases)
    # the model's hundreds of thousands of long-lived objects leave the garbage collector's
    # generations, so its full collections (triggered by each batch's short-lived objects) stop
    # walking them
    gc.collect()
    gc.freeze()
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    effects = StoryEffects(s, client=client, alerter=make_alerter(s), metrics=metrics)
    from .linking import make_linker

    app = create_app(
        s,
        analyser=Analyser(nlp, metrics=metrics, batch_size=s.batch_size),
        linker_factory=lambda state: make_linker(s, state),
        effects=effects,
        metrics=metrics,
        health=health,
    )
    # faust's own logging set-up takes this dict instead of adding its coloured text handler. Logs go
    # to stderr; stdout stays the terminal's (alerts printed when no webhook is set), not turned into
    # WARNING log records one line at a time as mode does by default.
    service_worker_class()(
        app, loglevel=s.log_level, quiet=True, logging_config=logging_config(s.log_format, s.log_level), redirect_stdouts=False
    ).execute_from_commandline()


__all__ = ["AlertSender", "StoryEffects", "run_worker"]
