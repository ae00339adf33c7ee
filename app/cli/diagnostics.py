"""Logging for the exchange's processes: to stderr, ids and codes only, never values."""

from __future__ import annotations

import logging
import sys

# These log SQL parameters or request and response content at DEBUG level: notices, tokens and
# secrets; httpx logs every request's whole URL at INFO, and a subscriber's URL may carry a
# credential in its query. They are held at WARNING whatever level the rest logs at.
VALUE_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy.engine",
    "httpx",
    "httpcore",
    "hpack",
    "multipart",
)


def quiet_value_loggers() -> None:
    for name in VALUE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    quiet_value_loggers()
