"""Structured logs and secret redaction.

* :class:`JsonFormatter`: one JSON object per line, with the article and story ids when a line has
  them.
* :func:`configure_logging`: the process's logging from the start, before faust sets up its own,
  so that with ``log_format=json`` the very first line is JSON too; :func:`logging_config` is the
  same set-up as a :func:`logging.config.dictConfig` dict, for faust's ``Worker(logging_config=...)``
  so that faust never installs its coloured text handler.
* :func:`protect`: secret values (and the forms they take on the wire) registered here are
  replaced by ``**********`` in every log record of the process, whichever library logged it and
  whichever handler formats it. Settings registers its secrets when it is built, so a library
  that logs a URL, a request or a header (httpx at INFO, kafka-python at DEBUG) cannot leak one.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any, Literal

#: ``extra=`` keys copied into the JSON object when a log call passes them.
CONTEXT_KEYS = ("article", "story", "stage", "reason", "key", "contradiction", "alert")

#: What a redacted secret is replaced with.
MASK = "**********"

#: Secrets shorter than this are not redacted: blanking every occurrence of a 3-letter string
#: would mangle unrelated log lines, and such a secret is not one worth the name.
MIN_SECRET_CHARS = 6

#: Settings' ``log_level`` words -> :mod:`logging` level names.
LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}

LogFormat = Literal["text", "json"]


# ----------------------------------------------------------------------------------- redaction


class Redactor:
    """A set of secret strings and :meth:`redact`, which masks every occurrence of each.

    Thread-safe: the set is replaced, never mutated, so a reader sees an old or a new set."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS}
        if not new - self._secrets:
            return
        with self._lock:
            self._secrets = self._secrets | new

    def clear(self) -> None:
        with self._lock:
            self._secrets = frozenset()

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def redact(self, text: str) -> str:
        # longest first: a secret that contains another is masked whole
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text


REDACTOR = Redactor()
_base_factory: Any = None


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if REDACTOR:
        redact_record(record)
    return record


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask registered secrets in a record's message and exception text, in place.

    The message is formatted here (``msg % args``) only when it holds a secret; otherwise the record
    is left as it was. An exception is formatted once into ``exc_text``, which every
    :class:`logging.Formatter` reuses instead of formatting the traceback again."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
        message = str(record.msg)
    masked = REDACTOR.redact(message)
    if masked != message:
        # args=() rather than None: some formatters (mode's) iterate over args
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = REDACTOR.redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = REDACTOR.redact(record.stack_info)
    return record


def protect(*values: str | None) -> None:
    """Register secret values: from now on they never appear in a log record of this process.

    Installs (once) a log-record factory, so the masking applies to every logger and handler,
    including the ones faust installs later. ``None`` and values shorter than
    :data:`MIN_SECRET_CHARS` are ignored."""
    global _base_factory
    REDACTOR.add(v for v in values if v)
    if _base_factory is None and REDACTOR:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_factory)


# ----------------------------------------------------------------------------------- formatting


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the context keys the
    log call passed as ``extra`` and ``exception``. Registered secrets are masked in the result."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info or record.exc_text:
            # exc_text: already formatted (and redacted) by the record factory
            doc["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            doc["stack"] = record.stack_info
        line = json.dumps(doc, ensure_ascii=False, default=str)
        return REDACTOR.redact(line) if REDACTOR else line


class _RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return REDACTOR.redact(line) if REDACTOR else line


TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def logging_config(log_format: LogFormat, log_level: str = "warn", *, stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict: one root handler on ``stream``, JSON or text.

    Pass it to faust's ``Worker(logging_config=...)``: mode then applies it instead of its default
    (a coloured text handler), so every line stays JSON when JSON is chosen. Loggers that already
    exist are kept enabled, and Python ``warnings`` are routed through logging by
    :func:`configure_logging`, not here."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {"()": f"{__name__}._RedactingTextFormatter", "format": TEXT_FORMAT}
    )
    level = LEVELS.get(log_level, log_level.upper())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"crosswire": formatter},
        "handlers": {"crosswire": {"class": "logging.StreamHandler", "formatter": "crosswire", "stream": stream}},
        "root": {"level": level, "handlers": ["crosswire"]},
    }


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("crosswire").critical("uncaught %s", kind.__name__, exc_info=(kind, value, tb))


def configure_logging(log_format: LogFormat, log_level: str = "warn") -> None:
    """Set up the process's logging now, before any library logs: a root handler in the chosen
    format at the chosen level, Python ``warnings`` through logging and, for JSON, uncaught
    exceptions logged as one JSON line instead of a plain traceback.

    Call it first thing in a long-running command (the worker); faust later re-applies the same
    set-up from :func:`logging_config`. Idempotent."""
    logging.config.dictConfig(logging_config(log_format, log_level))
    logging.captureWarnings(True)
    if log_format == "json":
        sys.excepthook = _log_uncaught


__all__ = [
    "CONTEXT_KEYS",
    "JsonFormatter",
    "MASK",
    "REDACTOR",
    "Redactor",
    "configure_logging",
    "json_handler",
    "logging_config",
    "protect",
    "redact_record",
]
