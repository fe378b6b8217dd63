"""Parse and validate incoming articles.

The edge of the system: bytes from a file or a topic become an :class:`~pipeline.types.Article`, or a
:class:`BadArticle` with a machine-readable reason. Nothing here raises anything else, whatever the
input, so a caller can always route a failure to the dead-letter topic.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from .types import Article, DeadLetter, stable_id

#: Fields of the article format. Other fields are ignored (see article_from_record).
FIELDS = ("id", "url", "source", "title", "text", "published", "language")
#: Byte limits of the short fields: an id is an Elasticsearch ``_id`` (at most 512 bytes) and a
#: Kafka key; a title, URL or outlet name longer than these is not one.
FIELD_LIMITS = {"id": 512, "title": 4000, "url": 8000, "source": 1000}
#: How much of a rejected payload a dead letter keeps (the rest is counted, not stored).
DEAD_LETTER_PAYLOAD_MAX = 64_000


class BadArticle(ValueError):
    """An input record that cannot become an article. ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def derive_id(text: str, *, url: str | None = None, source: str | None = None, title: str | None = None) -> str:
    """The id of an article that came without one: a hash of its content, so that re-sending the same
    article gives the same id (and the same Elasticsearch document)."""
    return stable_id("article", source or "", url or "", title or "", " ".join(text.split()))


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadArticle("invalid_utf8", f"not valid UTF-8 at byte {e.start}") from None


def _parse_published(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadArticle("invalid_published", f"'published' must be an ISO 8601 string, got {type(value).__name__}")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadArticle("invalid_published", f"'published' is not ISO 8601: {value[:40]!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def article_from_record(record: Any, *, max_text_bytes: int) -> Article:
    """Validate one decoded JSON record. Only ``text`` is required; a missing ``id`` is derived."""
    if not isinstance(record, dict):
        raise BadArticle("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    # Fields outside the article format (a feed's own metadata, a gold label) are ignored, not an
    # error: they are kept on the articles topic as sent, only the pipeline does not read them.
    record = {k: v for k, v in record.items() if k in FIELDS}
    for name in FIELDS:
        value = record.get(name)
        if value is not None and name != "published" and not isinstance(value, str):
            raise BadArticle("wrong_type", f"'{name}' must be a string, got {type(value).__name__}")
    text = record.get("text")
    if text is None:
        raise BadArticle("missing_text", "the record has no 'text'")
    if not text.strip():
        raise BadArticle("empty_text", "'text' is empty")
    size = len(text.encode("utf-8"))
    if size > max_text_bytes:
        raise BadArticle("too_large", f"'text' is {size} bytes, over the limit of {max_text_bytes} (max_text_bytes)")
    if "\x00" in text:
        raise BadArticle("binary", "'text' contains NUL bytes")
    for name, limit in FIELD_LIMITS.items():
        value = record.get(name)
        if isinstance(value, str) and (n := len(value.encode("utf-8"))) > limit:
            raise BadArticle("too_large", f"'{name}' is {n} bytes, over the limit of {limit}")
    clean = {k: (v.strip() if isinstance(v, str) and k != "text" else v) for k, v in record.items()}
    clean = {k: v for k, v in clean.items() if v not in (None, "")}
    clean["published"] = _parse_published(record.get("published"))
    if not clean.get("id"):
        clean["id"] = derive_id(text, url=clean.get("url"), source=clean.get("source"), title=clean.get("title"))
    try:
        return Article(**clean)
    except ValidationError as e:  # pragma: no cover - the checks above cover the schema
        raise BadArticle("invalid_record", str(e.errors()[0]["msg"])) from None


def parse_article(raw: bytes | str, *, max_text_bytes: int = 150_000) -> Article:
    """Parse one JSON-encoded article. Raises :class:`BadArticle` and nothing else."""
    try:
        if isinstance(raw, bytes) and len(raw) > 4 * max_text_bytes + 65536:
            raise BadArticle("too_large", f"the record is {len(raw)} bytes, over the limit")
        text = _decode(raw)
        if "\x00" in text:
            raise BadArticle("binary", "the record contains NUL bytes")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadArticle("invalid_json", f"{e.msg} at line {e.lineno} column {e.colno}") from None
        except RecursionError:
            raise BadArticle("invalid_json", "nesting too deep") from None
        return article_from_record(record, max_text_bytes=max_text_bytes)
    except BadArticle:
        raise
    except Exception as e:  # noqa: BLE001 - the contract is: only BadArticle leaves this function
        raise BadArticle("unparseable", f"{type(e).__name__}: {e}") from None


#: What a record needs beside its value (key, headers, batch framing; a linked article's decision
#: on top of its analysed record): the values the worker and producer write stay this far below
#: the brokers' limit.
RECORD_HEADROOM = 16_384


def record_limit(s: Any) -> int:
    """The largest value produced under settings ``s``: the brokers' limit less the headroom."""
    return int(s.kafka_max_message_bytes) - RECORD_HEADROOM


def message_too_large(what: str, size: int, s: Any) -> str:
    """The reason a record is not produced: over the brokers' message limit (``s`` the settings)."""
    return (f"{what} is {size} bytes, over the {record_limit(s)} a record may take under the "
            f"{s.kafka_max_message_bytes} bytes the brokers accept (kafka_max_message_bytes); raise that "
            f"together with the brokers' message.max.bytes, or lower max_text_bytes ({s.max_text_bytes})")


def dead_letter(raw: bytes | str, err: BadArticle, *, stage: str, key: str | None = None, at: datetime | None = None) -> DeadLetter:
    """The dead-letter record for a rejected input: the reason and the original payload (bounded)."""
    payload = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if len(payload) > DEAD_LETTER_PAYLOAD_MAX:
        payload = payload[:DEAD_LETTER_PAYLOAD_MAX] + f"… [{len(payload) - DEAD_LETTER_PAYLOAD_MAX} more characters]"
    return DeadLetter(reason=err.reason, message=err.message, stage=stage, key=key, payload=payload, at=at)
