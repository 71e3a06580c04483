"""The event records and the atomic spool writer.

Every record is a flat dict whose first key is "kind" and which carries
`schema_version`. One spool file holds one job: spool/<run_id>/<job_id>.jsonl,
written to a temporary name, fsynced, then renamed, so a reader never sees half
a file. The record fields are the contract in ../DESIGN.md and warehouse/schema.sql.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import uuid
from pathlib import Path

SCHEMA_VERSION = 1
KINDS = ("run", "job", "phase", "step", "op", "sample", "image")


def record(kind: str, **fields) -> dict:
    """A flat event record: kind first, then schema_version, then the fields."""
    if kind not in KINDS:
        raise ValueError(f"record kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return {"kind": kind, "schema_version": SCHEMA_VERSION, **fields}


def new_id(prefix: str) -> str:
    """A sortable, unique id: prefix, UTC time, random suffix."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def hostname() -> str:
    return socket.gethostname()


class SpoolWriter:
    """The one writer of spool files. Each `write` call is one atomic file."""

    def __init__(self, spool_dir: str | os.PathLike):
        self.spool_dir = Path(spool_dir)

    def write(self, run_id: str, name: str, records: list[dict]) -> Path:
        """Write `records` as spool/<run_id>/<name>.jsonl atomically; return the path.

        When writing, syncing or renaming fails, raises that OSError and leaves neither
        the file nor its temporary file behind."""
        # 1. Serialise everything first: a record that cannot be encoded fails before any I/O.
        payload = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records)
        folder = self.spool_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{name}.jsonl"
        tmp = folder / f".{name}.jsonl.tmp"
        # 2. Write and fsync the temporary file, then rename it into place. If any of that
        #    fails (disk full, file too large), the temporary file is removed and the error
        #    raised: no final-named file exists, and nothing half-written is left behind.
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        # 3. Fsync the folder so the rename itself is durable.
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final
