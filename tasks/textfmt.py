"""Bounded text: every value a report, log line, state message or event echoes from user data
goes through `clip`, so one 5 MB series id cannot blow a message past what Prefect or a log
can take."""

from __future__ import annotations

VALUE_CHARS = 80  # one echoed value (a series id, a raw cell, a file name)
MESSAGE_CHARS = 4000  # one whole message (a state message, an event payload, a log record)


def clip(value: object, limit: int = VALUE_CHARS) -> str:
    """`str(value)`, cut to `limit` characters with how many were left out."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (+{len(text) - limit} chars)"
