"""The one writer of spool files: each `write` is one atomic file.

spool/<run_id>/<name>.jsonl is written to a temporary name, fsynced, then renamed,
so a reader never sees half a file; a write that fails leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


class SpoolWriter:
    """The one writer of spool files. Each `write` call is one atomic file."""

    def __init__(self, spool_dir: str | os.PathLike):
        self.spool_dir = Path(spool_dir)

    def write(self, run_id: str, name: str, records: list[dict], replace: bool = True) -> Path:
        """Write `records` as spool/<run_id>/<name>.jsonl atomically; return the path.

        When writing, syncing or renaming fails, raises that OSError and leaves neither
        the file nor its temporary file behind. With `replace=False` a file already there
        wins: FileExistsError is raised and that file is left as it is (a driver recording
        a lost job never overwrites the record its worker managed to write)."""
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
            if replace:
                os.replace(tmp, final)
            else:  # link, unlike rename, refuses an existing name; then the temporary name goes
                os.link(tmp, final)
                tmp.unlink()
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
