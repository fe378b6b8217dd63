"""The faust-streaming worker: the only module that imports faust.

Topology (``P`` = ``CROSSWIRE_TOPIC_PREFIX``)::

    P-articles  (N partitions, key article id)
        └─ analyse: parse → normalise → spaCy entities → claims   (batched, off the event loop)
    P-analysed  (1 partition: the linker is one sequential state machine)
        └─ link: story linker, state in the table P-link-state (changelog-backed)
    P-linked    (N partitions, key story id)
        └─ story: contradictions (state in the table P-story-state) → index → alert
    P-dead-letters  every rejected record, with a machine-readable reason

Delivery is at least once (the embedded broker has no transactions). Every effect is idempotent:
Elasticsearch documents have deterministic ``_id``s, the linker returns the same decision for an
article it has already linked, story state ignores an article it already holds, and an alert's
dedupe key is persisted (``create``) before the message is sent. Within one batch, the table writes
come last, so a crash before them replays the whole batch and its (idempotent) effects; the link
table's writes of one batch are made atomic by a journal message (see :mod:`pipeline.linking`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from elastic_transport import TransportError
from elasticsearch import ApiError
from aiokafka.errors import KafkaError

from .analyse import Analyser
from .article import BadArticle, dead_letter, message_too_large, parse_article, record_limit as _record_limit
from .health import Health
from .kafka import first_offset_at
from .linking import JournalWriter, read_link_table
from .memory import TrimSchedule, trim
from .metrics import Metrics
from .settings import Settings
from .stall import Progress, StallWatch
from .storystate import StoryRecord, apply
from .types import AnalysedArticle, DeadLetter, LinkedArticle, StoryRetired
from .worker import StoryEffects

log = logging.getLogger("crosswire.worker")


@contextlib.contextmanager
def _current(event: Any) -> Iterator[None]:
    """Make ``event`` faust's current event while the body runs. A table write goes to the changelog
    partition of the current event (the partition its key was read from); batched agents handle many
    events at once, so they name the event whose key they write. faust sets this context variable
    itself for one-event iteration; it has no public setter."""
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _utc(ts: float | None) -> datetime:
    return datetime.fromtimestamp(ts or 0.0, timezone.utc)


class DurableTable(faust.Table):
    """A faust table whose changelog sends can be awaited (:meth:`changelog_sent`).

    In at-least-once mode faust commits a source offset once its event is acknowledged, without
    waiting for the changelog messages the event's table writes put in the producer's buffer. A
    worker killed in between restarts from the committed offset with a changelog that lacks those
    writes: the state silently loses what the event did (an article missing from its story). The
    agents therefore await :meth:`changelog_sent` before they let their events be acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: list[Any] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)
        self._unsent.append(fut)
        return fut

    async def changelog_sent(self) -> None:
        """Wait until every changelog message sent so far is acknowledged by the broker."""
        pending, self._unsent = self._unsent, []
        if pending:
            await asyncio.gather(*pending)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread with the fetch wait from settings (faust fixes it at 1.5 s)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its fetcher
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class CrosswireApp(faust.App):
    """A faust app whose Kafka consumer uses ``fetch_max_wait_ms``."""

    fetch_max_wait_ms = 500

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_app(
    s: Settings, *, analyser: Analyser, linker_factory: Any, effects: StoryEffects, metrics: Metrics, health: Health | None = None
) -> faust.App:
    """Build the faust app. ``linker_factory(state: list[dict])`` rebuilds the story linker from the
    persisted table values; ``effects`` indexes and alerts."""
    app = CrosswireApp(
        s.worker_id,
        broker=[f"kafka://{h}" for h in s.kafka_bootstrap.split(",")],
        store="memory://",
        topic_partitions=s.topic_partitions,
        topic_replication_factor=1,
        processing_guarantee="at_least_once",
        Table=DurableTable,
        datadir=str(s.data_dir),
        web_enabled=s.web_port > 0,
        web_port=s.web_port or 6066,
        broker_rebalance_timeout=s.kafka_rebalance_timeout_s,
        broker_session_timeout=max(s.kafka_rebalance_timeout_s, 10.0),
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=s.kafka_max_message_bytes,  # never more than the brokers accept
        consumer_max_fetch_size=max(4 * s.kafka_max_message_bytes, 4_194_304),
        broker_credentials=_credentials(s),
    )
    app.fetch_max_wait_ms = s.kafka_fetch_max_wait_ms
    articles = app.topic(s.topic("articles"), value_serializer="raw", key_serializer="raw")
    analysed = app.topic(s.topic("analysed"), value_serializer="raw", key_serializer="raw", partitions=1)
    linked = app.topic(s.topic("linked"), value_serializer="raw", key_serializer="raw")
    dead = app.topic(s.topic("dead-letters"), value_serializer="raw", key_serializer="raw", partitions=1)

    # Keys are str and values compact JSON bytes (no pickle). Bytes, not dicts: a story's state is
    # held in memory once as one string instead of thousands of small Python objects (4-5x less),
    # and pydantic reads and writes it without an intermediate dict. A changelog written by an
    # older version (faust's json serializer, the same JSON bytes) reads back unchanged.
    link_table = app.Table(f"{s.topic_prefix}-link-state", partitions=1, key_type=str, value_type=bytes)
    story_table = app.Table(f"{s.topic_prefix}-story-state", key_type=str, value_type=bytes)
    assert isinstance(link_table, DurableTable) and isinstance(story_table, DurableTable)

    state: dict[str, Any] = {"linker": None, "unsaved": {}}
    record_limit = _record_limit(s)  # the largest value the worker writes (the brokers' limit less framing)
    journal = JournalWriter(record_limit)  # the link table's writes of a batch (see pipeline.linking)
    sources = {s.topic("articles"), s.topic("analysed"), s.topic("linked")}
    progress: dict[Any, float] = {}  # source partition -> monotonic time its last message was finished
    # spaCy always runs on this one thread: its large buffers stay in one malloc arena instead of
    # spreading over the default executor's threads (each with an arena of its own)
    nlp_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crosswire-nlp")
    inflight: Counter[Any] = Counter()  # source partition -> batches of it being handled now
    watch = StallWatch(s.kafka_stall_reseek_s)
    work = {"batches": 0}  # batches handled by every agent: the memory timer reads it
    trims = TrimSchedule(s.memory_trim_interval_s)
    health = health or Health()

    account = Progress()  # source partition -> the next offset not finished (see pipeline.stall)

    def done(event: Any) -> None:
        tp = event.message.tp
        progress[tp] = time.monotonic()
        account.finish(tp, event.message.offset, app.consumer._committed_offset.get(tp))  # no public accessor

    async def send_dead(raw: bytes, err: BadArticle, stage: str, key: bytes | None, at: datetime) -> None:
        letter = dead_letter(raw, err, stage=stage, key=key.decode("utf-8", "replace") if key else None, at=at)
        await (await dead.send(key=key, value=letter.model_dump_json().encode()))
        metrics.dead_letters.labels(stage, err.reason).inc()
        metrics.articles.labels(stage, "dead_letter").inc()
        log.warning("dead letter from %s: %s (%s)", stage, err.reason, err.message,
                    extra={"stage": stage, "reason": err.reason, "key": letter.key})

    @contextlib.asynccontextmanager
    async def _handling(events: list[Any]) -> Any:
        """Mark the events' partitions busy while their batch is handled (the stall watchdog in
        ``lag`` leaves busy partitions alone)."""
        tps = {ev.message.tp for ev in events}
        inflight.update(tps)
        try:
            yield
        finally:
            inflight.subtract(tps)
            work["batches"] += 1

    @app.agent(articles)
    async def analyse_agent(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=s.batch_within_s):
            async with _handling(events):
                await analyse_batch(events)

    async def analyse_batch(events: list[Any]) -> None:
        """One batch of the articles topic: parse, analyse off the event loop, pass on."""
        loop = asyncio.get_running_loop()
        good, origin, arrived = [], {}, {}
        for ev in events:
            metrics.articles.labels("parse", "in").inc()
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                art = parse_article(raw, max_text_bytes=s.max_text_bytes)
            except BadArticle as err:
                await send_dead(raw, err, "parse", ev.key, _utc(ev.message.timestamp))
                continue
            metrics.articles.labels("parse", "ok").inc()
            good.append(art)
            origin[art.id] = raw
            arrived[art.id] = ev.message.timestamp
        if not good:
            for ev in events:
                done(ev)
            return
        try:
            results = await loop.run_in_executor(nlp_pool, analyser.analyse, good)
        except Exception:  # noqa: BLE001 - find the one article that breaks the batch
            results = []
            for art in good:
                try:
                    results.extend(await loop.run_in_executor(nlp_pool, analyser.analyse, [art]))
                except Exception as e:  # noqa: BLE001
                    log.exception("analysis failed for article %s", art.id)
                    await send_dead(origin[art.id], BadArticle("analyse_error", f"{type(e).__name__}: {e}"[:1000]), "analyse", art.id.encode(), _utc(None))
        # downstream messages keep the article's own Kafka time: it is the arrival clock that
        # retires quiet stories, so a backfill produced with its original times retires them too
        futs = []
        for a in results:
            value = a.model_dump_json().encode()
            if len(value) > record_limit:  # the broker would refuse it: say so instead of failing the batch
                err = BadArticle("too_large", message_too_large("the analysed record", len(value), s))
                await send_dead(origin[a.article.id], err, "analyse", a.article.id.encode(), _utc(arrived.get(a.article.id)))
                continue
            futs.append(await analysed.send(key=a.article.id.encode(), value=value, timestamp=arrived.get(a.article.id)))
        await asyncio.gather(*futs)
        for ev in events:
            done(ev)

    _INFRA = (TransportError, ApiError, ConnectionError, TimeoutError, KafkaError)

    async def decode(stage: str, event: Any, model: Any) -> Any:
        """``event``'s value as ``model``, or ``None`` after dead-lettering a value that does not decode.
        Only articles count as a stage's input (not the linker's story-retired notices)."""
        if model is not StoryRetired:
            metrics.articles.labels(stage, "in").inc()
        try:
            return model.model_validate_json(event.value)
        except ValueError as e:
            await send_dead(event.value, BadArticle("invalid_message", str(e)[:500]), stage, event.key, _utc(event.message.timestamp))
            return None

    async def run_batch(stage: str, items: list[tuple[Any, Any]], handle: Any) -> None:
        """Run ``handle(items)``. Infrastructure errors (search server or broker unreachable) retry it
        with back-off, holding the partitions (back-pressure): the events are fine and every effect is
        idempotent. Any other error splits the batch to find the event that causes it, and that one
        is dead-lettered with its reason instead of crashing the agent (which would skip it silently)."""
        delay = 0.5
        while True:
            try:
                await handle(items)
                return
            except _INFRA as e:
                if isinstance(e, ApiError) and e.status_code not in (429, 502, 503, 504):
                    failure: Exception = e
                    break
                log.warning("%s: %s while handling %d event(s); retry in %.1fs", stage, type(e).__name__, len(items), delay,
                            extra={"stage": stage, "key": str(items[0][0].key)})
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
            except Exception as e:  # noqa: BLE001 - the stream must go on; the event is kept
                failure = e
                break
        if len(items) > 1:
            for item in items:
                await run_batch(stage, [item], handle)
            return
        event = items[0][0]
        log.error("%s failed on %r", stage, event.key, exc_info=failure, extra={"stage": stage, "key": str(event.key)})
        err = BadArticle("processing_error", f"{stage}: {type(failure).__name__}: {failure}"[:1000])
        await send_dead(event.value, err, stage, event.key, _utc(event.message.timestamp))

    async def handle_link(items: list[tuple[Any, AnalysedArticle]]) -> None:
        linker = state["linker"]
        if linker is None:
            restored, pending = read_link_table(link_table.values())
            linker = linker_factory(restored)
            journal.restore(link_table.keys())
            # the last journal's keys go out again with this batch (their own writes may not have landed)
            state["unsaved"] = dict.fromkeys(pending)
            state["linker"] = linker  # last: a restore that raised is done again by the retry
            log.info("linker restored with %d live stories", linker.live_stories)
        # stories whose exported state changed and is not in the table yet, in order: kept across a
        # retried batch (whose articles the linker already holds, so that it reports no change then)
        unsaved: dict[str, None] = state["unsaved"]
        out = []
        for event, a in items:
            try:
                with metrics.stage_seconds.labels("link").time():
                    decision = linker.link(a.article.id, a.features, a.article.published, now=_utc(event.message.timestamp))
            finally:
                # it reports the last link() only, and what a link() that raised changed before it
                # raised (its clock may have retired stories): those go out with the retried batch
                unsaved.update(dict.fromkeys(linker.changed_stories()))
            if decision.is_new:
                metrics.stories.inc()
            # the analysed JSON is passed on as it came: a LinkedArticle without re-encoding it
            value = b'{"analysed":' + bytes(event.value) + b',"link":' + decision.model_dump_json().encode() + b"}"
            out.append((decision.story.encode(), value, event.message.timestamp))
            log.info("linked %s to story %s (p=%.2f%s)", a.article.id, decision.story, decision.score,
                     ", new" if decision.is_new else "", extra={"article": a.article.id, "story": decision.story})
        exports = {sid: linker.export_story(sid) for sid in unsaved}
        # stories that retired (the retired aggregate's own keys start with "__": not stories)
        retired = [sid for sid, e in exports.items() if e.get("kind") == "tombstone" and not sid.startswith("__")]
        at = _utc(items[-1][0].message.timestamp)
        # the story agent that holds a retired story's state is told to drop it (same key, same partition)
        out += [(sid.encode(), StoryRetired(retired=sid, at=at).model_dump_json().encode(), items[-1][0].message.timestamp) for sid in retired]
        # send the whole batch, then wait for every acknowledgement once (not one round trip each)
        await asyncio.gather(*[await linked.send(key=k, value=v, timestamp=ts) for k, v, ts in out])
        if exports:
            with _current(items[-1][0]):  # the link table has one partition
                # the whole change as one (atomic) journal message, then one key each (see pipeline.linking)
                for key, value in journal.writes(exports):
                    if value is None:
                        link_table.pop(key, None)
                    else:
                        link_table[key] = value
            await link_table.changelog_sent()  # before the batch is acknowledged (see DurableTable)
            unsaved.clear()
        if retired:
            metrics.retired_stories.inc(len(retired))
        metrics.live_stories.set(linker.live_stories)
        metrics.articles.labels("link", "ok").inc(len(items))
        metrics.last_processed.labels("link").set(items[-1][0].message.timestamp or 0)

    downstream_within = min(s.batch_within_s, 0.05)  # linking and indexing are cheap: do not wait long

    @app.agent(analysed)
    async def link_agent(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=downstream_within):
            async with _handling(events):
                items = [(ev, v) for ev in events if (v := await decode("link", ev, AnalysedArticle)) is not None]
                if items:
                    await run_batch("link", items, handle_link)
                for ev in events:
                    done(ev)

    @app.on_partitions_revoked.connect
    async def _revoked(app: Any, revoked: Any, **kw: Any) -> None:
        if any(tp.topic == s.topic("analysed") for tp in revoked):
            state["linker"] = None  # rebuilt from the table by whoever owns the partition next
        for tp in revoked:  # another worker may go on with them: a later assignment starts afresh
            account.forget(tp)

    async def handle_story(items: list[tuple[Any, LinkedArticle | StoryRetired]]) -> None:
        latest: dict[str, StoryRecord | None] = {}  # story -> its record as this batch leaves it
        batch = []
        dirty: dict[str, Any] = {}  # story -> the (last) event that changed it
        drop: dict[str, Any] = {}  # retired story -> the event that said so
        for event, la in items:
            if isinstance(la, StoryRetired):
                drop[la.retired] = event
                continue
            key = la.link.story
            if key not in latest:
                raw = story_table.get(key)
                latest[key] = StoryRecord.model_validate_json(raw) if raw else None
            with metrics.stage_seconds.labels("contradict").time():
                record, changes = apply(latest[key], la, _utc(event.message.timestamp))
            if record is not latest[key]:
                dirty[key] = event  # an article the story already held leaves it unchanged
            latest[key] = record
            batch.append((la, record, changes))
        metrics.articles.labels("contradict", "ok").inc(len(batch))
        await effects.apply(batch, asyncio.get_running_loop())
        # the table writes come last: a crash before them replays the batch and its idempotent effects
        for key, event in dirty.items():
            with _current(event):
                story_table[key] = latest[key].model_dump_json().encode()  # type: ignore[union-attr]
        for key, event in drop.items():
            with _current(event):
                story_table.pop(key, None)  # retired: its documents stay searchable in the index
            log.info("story %s retired; its state is dropped", key, extra={"story": key})
        await story_table.changelog_sent()  # before the batch is acknowledged (see DurableTable)
        metrics.last_processed.labels("contradict").set(items[-1][0].message.timestamp or 0)

    @app.agent(linked)
    async def story_agent(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=downstream_within):
            async with _handling(events):
                items = [
                    (ev, v)
                    for ev in events
                    if (v := await decode("contradict", ev, StoryRetired if bytes(ev.value).startswith(b'{"retired"') else LinkedArticle))
                    is not None
                ]
                if items:
                    await run_batch("contradict", items, handle_story)
                for ev in events:
                    done(ev)

    @app.timer(interval=1.0)
    async def heartbeat() -> None:
        health.tick()
        assigned = app.consumer.assignment() if app.consumer else set()
        mine = {tp for tp in assigned if tp.topic in sources}
        if app.rebalancing:
            health.set_ready(False, "rebalancing")
        elif not mine:
            health.set_ready(False, "no partitions assigned yet")
        else:
            health.set_ready(True, f"{len(mine)} partition(s) assigned")

    @app.timer(interval=5.0)
    async def lag() -> None:
        now = time.monotonic()
        assigned = {tp for tp in (app.consumer.assignment() if app.consumer else set()) if tp.topic in sources}
        for tp in list(progress):
            if tp not in assigned:
                progress.pop(tp, None)
                watch.forget(tp)
                account.forget(tp)
                metrics.forget_partition(tp.topic, tp.partition)
        topic_progress: dict[str, float] = {}  # topic -> when any of its partitions last finished a message
        for tp in assigned:
            topic_progress[tp.topic] = max(topic_progress.get(tp.topic, 0.0), progress.setdefault(tp, now))
        for tp in assigned:
            try:
                high = app.consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - not fetched yet
                continue
            read = app.consumer._read_offset.get(tp)  # faust keeps no public accessor for it
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, (high or 0) - ((read + 1) if read is not None else 0)))
            metrics.partition_idle.labels(tp.topic, str(tp.partition)).set(now - progress[tp])
            await _reseek_if_stalled(tp, read, now, topic_idle_s=now - topic_progress[tp.topic])

    async def _reseek_if_stalled(tp: Any, read: int | None, now: float, *, topic_idle_s: float) -> None:
        """See :mod:`pipeline.stall`: re-read a partition whose message was read but never processed."""
        unfinished = account.next(tp)
        if unfinished is None:  # nothing finished since it was assigned: faust's committed offset
            unfinished = app.consumer._committed_offset.get(tp)  # no public accessor either
        offset = watch.check(tp, committed=unfinished, read=read, busy=inflight[tp] > 0, idle_s=now - progress.get(tp, now),
                             now=now, finished=account.highest(tp), topic_idle_s=topic_idle_s)
        if offset is None:
            return
        # Is there a record at that offset at all? A range the log does not hold (transaction
        # markers, compaction, retention) is a hole in the account, not a message to re-read.
        first = await asyncio.get_running_loop().run_in_executor(None, first_offset_at, s, tp.topic, tp.partition, offset)
        if first is not None and first > offset:
            skipped = account.skip(tp, first)
            log.warning("partition %s[%d]: offsets %d to %d hold no records (transaction markers, compaction or "
                        "retention); going on from %s", tp.topic, tp.partition, offset, first - 1, account.next(tp),
                        extra={"topic": tp.topic, "partition": tp.partition, "skipped": str(skipped)})
            return
        log.warning("partition %s[%d]: offset %d was read but never processed (read up to %s, finished up to %s, "
                    "faust's committed offset %s); re-reading from it", tp.topic, tp.partition, offset, read,
                    account.highest(tp), app.consumer._committed_offset.get(tp),
                    extra={"topic": tp.topic, "partition": tp.partition})
        metrics.reseeks.labels(tp.topic, str(tp.partition)).inc()
        await app.consumer.seek(tp, offset)

    @app.timer(interval=5.0)
    async def memory() -> None:
        # the per-story state, bounded per story: what memory is for (summing lengths is cheap,
        # about 5 ms per 100,000 stories)
        metrics.state_bytes.labels("link").set(sum(len(v) for v in link_table.values()))
        metrics.state_bytes.labels("story").set(sum(len(v) for v in story_table.values()))
        # after a burst, the freed memory goes back to the OS (see pipeline.memory)
        if trims.due(time.monotonic(), work["batches"]):
            await asyncio.get_running_loop().run_in_executor(None, trim)

    @app.on_before_shutdown.connect
    async def _drain_alerts(app: Any, **kw: Any) -> None:
        # A clean stop sends what is queued (briefly), then lets the delivery in flight finish so
        # that its outcome is stored. What is left stays claimed in the outbox, and any worker's
        # sweep sends it after alert_pending_timeout_s.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, effects.sender.join, s.alert_timeout_s)
        left = await loop.run_in_executor(None, effects.sender.stop, s.alert_timeout_s + s.alert_max_wait_s)
        if left:
            log.warning("stopping with %d alert(s) unsent; the outbox sweep will send them", left)

    @app.timer(interval=s.alert_retry_interval_s)
    async def alert_outbox() -> None:
        await asyncio.get_running_loop().run_in_executor(None, effects.retry_alerts)

    return app


def _credentials(s: Settings) -> Any:
    if not s.kafka_sasl_mechanism:
        if s.kafka_security_protocol in ("SSL", "SASL_SSL") and s.kafka_ca_file:
            import ssl

            return faust.SSLCredentials(ssl.create_default_context(cafile=str(s.kafka_ca_file)))
        return None
    import ssl

    ctx = ssl.create_default_context(cafile=str(s.kafka_ca_file)) if s.kafka_ca_file else None
    password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    return faust.SASLCredentials(username=s.kafka_sasl_username or "", password=password, mechanism=s.kafka_sasl_mechanism, ssl_context=ctx)


__all__ = ["create_app", "DeadLetter"]
