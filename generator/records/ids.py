"""Ids, timestamps and the host name that the generator's records carry."""

from __future__ import annotations

import datetime as _dt
import socket
import uuid


def new_id(prefix: str) -> str:
    """A sortable, unique id: prefix, UTC time, random suffix."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def hostname() -> str:
    return socket.gethostname()
