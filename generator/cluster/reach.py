"""Reaching a Ray cluster: `connect(address)` for `--ray ADDRESS|auto|local`, and where a worker runs.

Ray schedules the workers (actors) on the cluster's GPUs or CPU slots; we do not schedule machines
ourselves. `connect` fails with one clear line, before any work, when Ray is not installed or nothing
answers at the address. What a run records of where it ran (the Ray node and worker) is
generator/sweep/metadata.py's `placement()`.
"""

from __future__ import annotations

import os
import queue
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

from generator.records.outcome import error_line

# --ray values besides an address: `auto` joins the cluster that `ray start --head` began on this machine,
# `local` starts a Ray instance in this process (stopped when it ends).
LOCAL, AUTO = "local", "auto"
CONNECT_TIMEOUT_S = 5.0
RAY_PIN = "ray==2.60.0"


class RayUnavailable(ValueError):
    """Ray is not installed, or no cluster answers at the address given (reported as one line, exit 2)."""


def connect(address: str, num_cpus: int | None = None):
    """The `ray` module, connected to `address` (host:port, ray://host:port, auto or local); a Ray already
    initialised in this process (a test's fixture, a notebook) is used as it is."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--ray needs the ray package, which is not installed (pip install {RAY_PIN})") \
            from None
    if ray.is_initialized():
        return ray
    if address not in (LOCAL, AUTO):
        _check_reachable(address)
    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(f"no Ray cluster answers at --ray {address!r}: {_first_line(exc)} (start one with "
                             "`ray start --head`, or use --ray local)") from None
    return ray


def _check_reachable(address: str) -> None:
    """A TCP connection to the address's host and port, within CONNECT_TIMEOUT_S (ray.init itself waits
    minutes on an address where nothing listens)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RayUnavailable(f"--ray must be host:port, ray://host:port, {AUTO} or {LOCAL}, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"no Ray cluster answers at --ray {address!r}: {exc.strerror or exc} (start one "
                             "with `ray start --head`, or use --ray local)") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def cpu_slots(ray) -> int:
    """The CPUs the cluster offers Ray (1 at least)."""
    return max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))


def gpu_count(ray) -> int:
    """The GPUs the cluster offers Ray."""
    return int(ray.cluster_resources().get("GPU", 0))


def initialised() -> bool:
    """Whether Ray is already initialised in this process (then the caller did not start it, and leaves it up)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def check_fits(ray, device: str, counts, what: str) -> None:
    """A cuda run needs GPUs in the cluster, and each count of `what` (workers, servers) must fit it: one GPU,
    or one CPU, each at least."""
    gpus, cpus = gpu_count(ray), cpu_slots(ray)
    if device == "cuda" and gpus == 0:
        raise ValueError("device must be one that the Ray cluster has, got 'cuda' (the cluster offers no GPU)")
    slots, kind = (gpus, "GPUs") if device == "cuda" else (cpus, "CPUs")
    for n in counts:
        if n > slots:
            raise ValueError(f"{what} must fit the Ray cluster's {slots} {kind} (one each at least), got {n}")


def actor_options(ray, device: str, n: int) -> tuple[dict, int | None]:
    """Ray options for one of n actors, and its torch threads: one GPU each on cuda; else an even share of the
    cluster's CPUs, no more than the smallest node has (an actor lives on one node)."""
    if device == "cuda":
        return {"num_gpus": 1, "num_cpus": 1}, None
    nodes = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    each = max(1, min(cpu_slots(ray) // n, int(min(nodes)) if nodes else 1))
    return {"num_cpus": each}, each


def cause(exc: BaseException) -> str:
    """The line of a Ray error that says what went wrong (its cause's message, not Ray's traceback)."""
    inner = getattr(exc, "cause", None)
    if isinstance(inner, BaseException) and inner is not exc:
        return error_line(inner)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line or "Error(" in line]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]


def loss(exc: BaseException) -> str:
    """Why an actor was lost, in a few words (Ray's own message runs to a paragraph)."""
    text = str(exc)
    if "was restarted" in text:
        return "its process died (killed, or out of memory) and Ray restarted it"
    if type(exc).__name__ == "ActorUnavailableError":
        return "its process stopped answering (killed, or out of memory)"
    if type(exc).__name__ == "ActorDiedError" or "died" in text:
        return f"its process died and Ray gave it up ({cause(exc)})"
    return cause(exc)


class TorchThread:
    """All of a Ray actor's torch work on one thread of its own, from loading the pipeline on.

    An actor streams messages back while its work runs, so the work cannot run on the thread that yields them.
    It must not move between threads either: once one thread has run parallel torch operators, another thread
    running them gets a thread team of its own that competes with the first for the same cores (here a small
    matrix product took 5x, a whole pipeline call 2-3x as long). So the actor's main thread runs none."""

    _END = object()

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")

    def call(self, fn, *args):
        """fn(*args) on the torch thread; its result, or its exception raised here."""
        return self._pool.submit(fn, *args).result()

    def stream(self, work, outbox: queue.Queue):
        """Run work() on the torch thread and yield what it puts in `outbox` as it goes; an exception it raised
        is raised here, after what it sent before it."""
        def run():
            try:
                work()
            finally:
                outbox.put(self._END)

        future = self._pool.submit(run)
        while (message := outbox.get()) is not self._END:
            yield message
        future.result()
