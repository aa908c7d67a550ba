"""JSON structured logs, one object per line, with secret-looking fields redacted; every line
written while a request is served carries its `request_id`."""
from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime

import orjson

_SECRET_WORDS = ("secret", "password", "token", "authorization", "api_key", "apikey")
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_make_record = logging.getLogRecordFactory()


def _record_with_request_id(*args, **kwargs) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    request_id = REQUEST_ID.get()
    if request_id is not None:
        record.request_id = request_id
    return record


logging.setLogRecordFactory(_record_with_request_id)


def _is_secret(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    """Renders a record and its `extra=` fields as JSON; fields named like secrets are masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = "[redacted]" if _is_secret(key) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what the request metrics already count.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
