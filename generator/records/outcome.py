"""What a run wrote, and the one place that reports a spool file it could not write.

A spool file that cannot be written (disk full, file too large) cannot record that failure itself: it is
reported on stderr and kept in the outcome's `unwritten` as an `Unwritten`, and the run goes on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


def error_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class Unwritten:
    """A spool file not written: what it held (`what`), its `path` ('' when there was none to write) and why
    (`reason`: the OS error, or what stopped it)."""

    what: str
    path: str
    reason: str


class Outcome(list):
    """The spool files a run wrote, in order; `unwritten` holds an `Unwritten` per file it could not write."""

    def __init__(self):
        super().__init__()
        self.unwritten: list[Unwritten] = []


def write_or_report(outcome: Outcome, write, path: Path | str, what: str) -> Path | None:
    """Call `write()` (a spool writer's write, returning the file's path) and add its path to `outcome`; on an
    OSError report it on stderr and in `outcome.unwritten`, and return None: the run goes on. Other errors
    (FileExistsError is an OSError: callers that expect it catch it first) pass."""


    try:
        written = write()
    except FileExistsError:
        raise
    except OSError as exc:
        outcome.unwritten.append(Unwritten(what, str(path), exc.strerror or error_line(exc)))
        tqdm.write(f"error: {what} failed: spool file '{path}' could not be written: {error_line(exc)}; the spool "
                   "cannot record a failure it cannot write, so it is reported only here", file=sys.stderr)
        return None
    outcome.append(written)
    return written
