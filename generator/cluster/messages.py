"""What crosses between the driver and its Ray actors, as small frozen dataclasses (not string-tagged tuples),
and what the driver keeps of one actor's messages while its call is in flight.

A sweep worker (workers.SweepWorker) sends, as its call goes: `JobStarting` before each job (the record the job
keeps if it never finishes), `FileToWrite` for a spool file the driver writes (--ray-spool driver) or
`FileWritten` for one the worker wrote itself (--ray-spool shared). A load server (servers.LoadServer) sends
`RequestAsked`, `RequestDone` and `WorkDone` as they happen, and `ServerFailed` if its work raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.serve.scheduler import Done, Request


# Sweep worker -> driver.

@dataclass(frozen=True)
class JobStarting:
    """A job is about to run: its run record, and the job record it keeps if it never finishes (status error)."""

    run: dict
    job: dict


@dataclass(frozen=True)
class FileToWrite:
    """A spool file's records, for the driver to write under `run_id` as `name`."""

    run_id: str
    name: str
    rows: list


@dataclass(frozen=True)
class FileWritten:
    """A spool file the worker wrote itself on the shared spool, at `path`."""

    run_id: str
    name: str
    path: str


SweepMessage = JobStarting | FileToWrite | FileWritten


# Load server -> driver.

@dataclass(frozen=True)
class RequestAsked:
    """The server took a request of its share (it arrived on the shared clock)."""

    request: Request


@dataclass(frozen=True)
class RequestDone:
    """The server finished a request."""

    done: Done


@dataclass(frozen=True)
class WorkDone:
    """One unit of work the server ran (router.Served.worked's fields, in order)."""

    unit: tuple


@dataclass(frozen=True)
class ServerFailed:
    """The server's work raised: its share ends here; `error` is the one line the requests left record."""

    error: str


ServerMessage = RequestAsked | RequestDone | WorkDone | ServerFailed


@dataclass
class Pending:
    """What the driver knows of a share in flight on one sweep worker: its runs, the job announced and not yet
    written, the runs already closed."""

    runs: dict = field(default_factory=dict)      # run_id -> run record (from the announcements)
    job: tuple | None = None                      # (run record, unfinished job record, when announced)
    closed: set = field(default_factory=set)      # run ids whose end file came
