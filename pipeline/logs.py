"""Structured logs: one JSON object per line, with the article and story ids when a line has them."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

#: ``extra=`` keys copied into the JSON object when a log call passes them.
CONTEXT_KEYS = ("article", "story", "stage", "reason", "key", "contradiction", "alert")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def json_handler(stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler
