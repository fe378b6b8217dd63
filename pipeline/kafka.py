"""kafka-python plumbing: client options from settings, topic creation, and the article producer."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .article import BadArticle, dead_letter, message_too_large, parse_article, record_limit
from .settings import Settings
from .sources import Record

#: name → (partitions; None means settings.topic_partitions). ``analysed`` has one partition: the
#: story linker is one sequential state machine over the whole stream.
TOPICS: dict[str, int | None] = {"articles": None, "analysed": 1, "linked": None, "dead-letters": 1}


def client_options(s: Settings) -> dict[str, Any]:
    """Security options shared by the kafka-python clients (secrets unwrapped only here).

    SASL options are passed only with a ``SASL_*`` protocol and TLS ones only with ``SSL`` or
    ``SASL_SSL``; certificates are always verified, hostname included (kafka-python's defaults),
    against ``kafka_ca_file`` or the system's CAs. kafka-python logs its whole configuration at
    DEBUG; the password is masked there because :class:`Settings` registers it with
    :func:`pipeline.logs.protect`."""
    protocol = s.kafka_security_protocol
    opts: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap.split(","), "security_protocol": protocol}
    if protocol.startswith("SASL_") and s.kafka_sasl_mechanism:
        opts["sasl_mechanism"] = s.kafka_sasl_mechanism
        opts["sasl_plain_username"] = s.kafka_sasl_username
        opts["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    if protocol in ("SSL", "SASL_SSL"):
        opts["ssl_check_hostname"] = True
        if s.kafka_ca_file:
            opts["ssl_cafile"] = str(s.kafka_ca_file)
    return opts


def ensure_topics(s: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create the pipeline's topics when missing; returns the names created. Idempotent."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        **client_options(s),
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),  # an unreachable or refusing cluster fails within timeout_s too
        client_id="crosswire-admin",
    )
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(s.topic(name), parts or s.topic_partitions, 1)
            for name, parts in TOPICS.items()
            if s.topic(name) not in existing
        ]
        created = []
        for topic in wanted:  # one at a time: a concurrent creator makes only its own call fail
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


@dataclass
class ProduceSummary:
    sent: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    errors: list[tuple[str, str]] = field(default_factory=list)  # (origin, message), all of them

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


class ArticleProducer:
    """Validates records and sends them to the articles topic, keyed by article id, with
    ``acks=all``, retries and the idempotent producer. Rejected records go to the dead-letter
    topic with their reason; nothing is dropped silently."""

    def __init__(self, s: Settings, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        from kafka import KafkaProducer

        self.settings = s
        self.clock = clock
        self.producer = KafkaProducer(
            **client_options(s),
            acks="all",
            retries=10,
            enable_idempotence=True,
            linger_ms=20,
            max_request_size=s.kafka_max_message_bytes,  # never more than the brokers accept
            client_id="crosswire-producer",
        )

    def send(self, records: Iterable[Record], *, on_error: Callable[[str, str], None] | None = None,
             on_progress: Callable[[int], None] | None = None) -> ProduceSummary:
        summary = ProduceSummary()
        futures = []
        for rec in records:
            try:
                if rec.error is not None:
                    raise rec.error
                article = parse_article(rec.raw, max_text_bytes=self.settings.max_text_bytes)
                value = article.model_dump_json().encode()
                if len(value) > record_limit(self.settings):
                    raise BadArticle("too_large", message_too_large("the article record", len(value), self.settings))
            except BadArticle as err:
                letter = dead_letter(rec.raw, err, stage="produce", at=self.clock())
                futures.append(
                    self.producer.send(self.settings.topic("dead-letters"), key=rec.origin.encode(), value=letter.model_dump_json().encode())
                )
                summary.rejected[err.reason] += 1
                summary.errors.append((rec.origin, err.message))
                if on_error:
                    on_error(rec.origin, f"{err.reason}: {err.message}")
            else:
                futures.append(self.producer.send(self.settings.topic("articles"), key=article.id.encode(), value=value))
                summary.sent += 1
            if on_progress:
                on_progress(1)
        self.producer.flush()
        for f in futures:
            f.get(timeout=30)  # raises if a send ultimately failed: never report unsent as sent
        return summary

    def close(self) -> None:
        self.producer.close()


def read_topic(s: Settings, name: str, *, timeout_s: float = 5.0) -> list[tuple[bytes | None, bytes]]:
    """Every message currently on a topic (all partitions, from the start), without a consumer
    group: for the CLI and tests. Stops at the end offsets seen when called."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(s), enable_auto_commit=False, group_id=None, consumer_timeout_ms=int(timeout_s * 1000))
    try:
        parts = consumer.partitions_for_topic(s.topic(name)) or set()
        tps = [TopicPartition(s.topic(name), p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend((m.key, m.value) for m in batch)
        return out
    finally:
        consumer.close()


def first_offset_at(s: Settings, topic: str, partition: int, offset: int, *, timeout_s: float = 5.0) -> int | None:
    """The offset of the first record of ``topic[partition]`` at or after ``offset``, without a
    consumer group: ``offset`` itself when that record exists, a later one when the log holds none
    there (transaction markers, compaction, retention). None when nothing came within ``timeout_s``
    (no record there yet, or the broker did not answer)."""
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition(topic, partition)
    # "earliest": an offset that retention already deleted reads from the log's start
    consumer = KafkaConsumer(**client_options(s), enable_auto_commit=False, group_id=None, max_poll_records=1,
                             auto_offset_reset="earliest", consumer_timeout_ms=int(timeout_s * 1000))
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200, max_records=1).values():
                if batch:
                    # below the offset asked for: it was past the end and the reset went to the start
                    return batch[0].offset if batch[0].offset >= offset else None
        return None
    finally:
        consumer.close()


def decode_json(value: bytes) -> Any:
    return json.loads(value.decode("utf-8"))
