"""Every Prometheus metric the workers export, declared once with its help text.

Labels are bounded: ``stage`` is one of :data:`STAGES`, ``outcome`` a handful of words, ``reason`` one
of the dead-letter reason codes. No label ever carries an article or story id.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGES = ("parse", "normalise", "nlp", "link", "claims", "contradict", "index", "alert")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    """The worker's metrics, bound to one registry (tests pass their own)."""

    registry: CollectorRegistry
    articles: Counter
    stage_seconds: Histogram
    dead_letters: Counter
    stories: Counter
    live_stories: Gauge
    retired_stories: Counter
    contradictions: Counter
    alerts: Counter
    alert_queue: Gauge
    es_docs: Counter
    es_errors: Counter
    last_processed: Gauge
    consumer_lag: Gauge
    reseeks: Counter
    partition_idle: Gauge
    state_bytes: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> "Metrics":
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        return cls(
            registry=r,
            articles=Counter(
                "crosswire_articles",
                "Articles entering and leaving each stage; outcome is in, ok, skipped or dead_letter.",
                ["stage", "outcome"],
                registry=r,
            ),
            stage_seconds=Histogram(
                "crosswire_stage_seconds",
                "Time spent in each stage, per call (a call may handle a batch of articles).",
                ["stage"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            dead_letters=Counter(
                "crosswire_dead_letters",
                "Records sent to the dead-letter topic, by stage and machine-readable reason.",
                ["stage", "reason"],
                registry=r,
            ),
            stories=Counter("crosswire_stories_created", "Stories opened by the linker.", registry=r),
            live_stories=Gauge("crosswire_live_stories", "Stories currently in the linker's live set.", registry=r),
            retired_stories=Counter(
                "crosswire_stories_retired", "Stories retired from the live set (quiet past the horizon).", registry=r
            ),
            contradictions=Counter(
                "crosswire_contradictions",
                "Contradictions found; event is new (first seen) or update (a side or source added).",
                ["kind", "event"],
                registry=r,
            ),
            alerts=Counter(
                "crosswire_alerts",
                "Alert deliveries; outcome is sent, printed, failed, duplicate (already sent, skipped), held (an update waiting for its digest), deferred (waiting for the alert it updates, or behind a failed delivery), taken_over (another worker's sweep sends it) or recovered (found already posted in Slack, not re-sent).",
                ["channel", "outcome"],
                registry=r,
            ),
            alert_queue=Gauge(
                "crosswire_alert_queue",
                "Alerts claimed by this worker and waiting for (or in) its sender thread.",
                registry=r,
            ),
            es_docs=Counter(
                "crosswire_es_documents",
                "Documents written to the search index, by index and outcome (ok or error).",
                ["index", "outcome"],
                registry=r,
            ),
            es_errors=Counter(
                "crosswire_es_write_errors", "Bulk write calls to the search server that failed after retries.", registry=r
            ),
            last_processed=Gauge(
                "crosswire_last_processed_timestamp_seconds",
                "Kafka timestamp of the last message each stage finished.",
                ["stage"],
                registry=r,
            ),
            consumer_lag=Gauge(
                "crosswire_consumer_lag",
                "Messages not yet read, per assigned source partition (highwater minus position).",
                ["topic", "partition"],
                registry=r,
            ),
            reseeks=Counter(
                "crosswire_partition_reseeks",
                "Source partitions re-read from their committed offset because a message was read and never processed.",
                ["topic", "partition"],
                registry=r,
            ),
            state_bytes=Gauge(
                "crosswire_state_bytes",
                "Bytes of serialized state this worker holds in its tables, by table: link (every live story's linker "
                "state; the linker's own structures take about 3.5 times as much again) and story (each story's claims, "
                "outlets and contradictions). Both are bounded per story and leave with retired stories.",
                ["table"],
                registry=r,
            ),
            partition_idle=Gauge(
                "crosswire_partition_idle_seconds",
                "Seconds since this worker last finished a message of the partition (since assignment if none).",
                ["topic", "partition"],
                registry=r,
            ),
        )

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the per-partition series of a partition this worker no longer owns."""
        for g in (self.consumer_lag, self.partition_idle):
            try:
                g.remove(topic, str(partition))
            except KeyError:
                pass
