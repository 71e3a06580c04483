"""A sweep on Ray workers: `python -m generator sweep --ray ADDRESS|auto|local`.

Each worker is a Ray actor (one GPU each with --device cuda, else an even share of the cluster's CPUs) that
loads its pipeline once and runs whole runs of the plan: a share is one run of one size (SizePlan.only), with
its warm-ups, rounds and profiled jobs, exactly as the sweep runs it in one process. The driver hands out the
shares as workers come free, so a fast worker takes more of them.

Where the records go (--ray-spool): `driver` (the default) — the worker streams each spool file's records
back and the driver writes it with the one atomic SpoolWriter; `shared` — the worker writes to --spool
itself (a folder every node sees at the same path) and streams back only that it did. Either way the
collector and the warehouse are unchanged.

Exactly once: job ids are unique (random) across workers. Before each job a worker hands the driver the
record that job keeps if it never finishes (job.unfinished_job: status error). If the worker dies — killed,
out of host memory, its node lost — the driver writes that record with the reason (without replacing a file
the worker did write, `replace=False`), closes the share's runs with the reason as their stop_reason, and
goes on: Ray restarts the worker (max_restarts) for the next share, and the other workers carry on. The job in
flight is therefore on record once, as failed; the rest of its run is not run (a new run would measure it
again under other conditions, and mixing the two would blur both).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

from generator.cluster.messages import FileToWrite, FileWritten, JobStarting, Pending, SweepMessage
from generator.cluster.reach import (
    TorchThread,
    actor_options,
    cause,
    check_fits,
    connect,
    cpu_slots,
    gpu_count,
    initialised,
    loss,
)
from generator.cluster.replicas import run_replicas
from generator.records.ids import new_id
from generator.records.outcome import Outcome, Unwritten, write_or_report
from generator.sweep import plan
from generator.sweep.config import SweepConfig
from generator.sweep.loop import Size, open_sweep
from generator.sweep.rounds import Stop
from spool import FILE_KINDS, SpoolWriter, file_kind

RESTARTS = 1  # times Ray restarts a worker that died, before its shares go to the others


# The worker side: one actor, its pipeline loaded once.

class SweepWorker:
    """A Ray actor's body: `open_sweep` once, then shares (or, for a replica sweep, a size opened, followed
    batch size by batch size, and closed), each call streaming back messages (cluster/messages.py): JobStarting
    before a job, FileToWrite for a spool file the driver writes, FileWritten for one the worker wrote itself
    (--ray-spool shared)."""

    def __init__(self, cfg: SweepConfig, sweep_id: str, threads: int | None, shared_spool: bool):
        self.torch = TorchThread()
        self._outbox: queue.Queue = queue.Queue()
        writer = _Shared(cfg.spool, self._outbox) if shared_spool else _Relay(self._outbox)
        self.sweep = self.torch.call(self._open, cfg, sweep_id, threads, writer)
        self.plans = plan.plan(cfg)
        self.sizes: dict = {}  # size index -> sweep.loop.Size opened by open_size
        self.stops: dict = {}  # size index -> (when its measured rounds began, the stop rule's last answer)

    def _open(self, cfg: SweepConfig, sweep_id: str, threads: int | None, writer):
        """On the torch thread: the worker's threads, then its pipeline (sweep.loop.open_sweep)."""
        import torch

        if threads and cfg.device == "cpu":
            torch.set_num_threads(threads)
        return open_sweep(cfg, sweep_id, writer, announce=lambda run, job: self._outbox.put(JobStarting(run, job)))

    def ready(self) -> dict:
        """Where this worker runs (what its runs record), once its pipeline is loaded."""
        m = self.sweep.metadata
        return {"host": m["host"], "device_name": m["device_name"], "gpu_uuid": m["gpu_uuid"],
                "threads": m["threads"], "worker_id": m["worker_id"], "ray_node_id": m["ray_node_id"]}

    def share(self, size: int, run: int):
        """One run of one size, start to end."""
        part = self.plans[size].only(runs={self.plans[size].runs[run]})
        yield from self._stream(lambda: Size(self.sweep, part, _NoBar()).run())

    def open_size(self, size: int, replica: dict):
        """Open every run of a size for a replica sweep (`replica`: replicas, level, index)."""
        self.sizes[size] = Size(self.sweep, self.plans[size], _NoBar(), replica=replica)
        yield from self._stream(self.sizes[size].open)

    def warm_ups(self, size: int, batch_size: int):
        """The warm-ups of one batch size of an opened size; its measured rounds start next (`measure_round`)."""
        opened, part = self.sizes[size], self.plans[size].only(batch_sizes={batch_size})
        self.stops[size] = (None, None)
        yield from self._stream(lambda: opened.warm_ups(part))

    def measure_round(self, size: int, batch_size: int, r: int):
        """Measured round r of one batch size of an opened size; what the stop rule says after it is kept
        (`wants_more`)."""
        opened, part = self.sizes[size], self.plans[size].only(batch_sizes={batch_size})
        start = self.stops[size][0] if r else time.monotonic()  # the rounds' clock starts with the first

        def work():
            self.stops[size] = (start, opened.measure_round(part, r, start))
        yield from self._stream(work)

    def wants_more(self, size: int) -> bool:
        """Whether this worker's stop rule asks for another round after its last one."""
        stop = self.stops[size][1]
        return stop is not None and not stop.stop

    def finish(self, size: int, batch_size: int):
        """After the measured rounds of one batch size: the reason they stopped, and its profiled jobs."""
        opened, part = self.sizes[size], self.plans[size].only(batch_sizes={batch_size})
        stop = self.stops.pop(size)[1] or Stop(True, "no measured rounds planned")
        yield from self._stream(lambda: opened.finish(part, stop))

    def close_size(self, size: int):
        """Close an opened size's runs (their end files)."""
        yield from self._stream(self.sizes.pop(size).close)

    def _stream(self, work):
        """Run `work` on the torch thread and yield what it sends (spool files, job announcements) as it goes."""
        yield from self.torch.stream(work, self._outbox)


class _Relay:
    """The worker's writer with --ray-spool driver: a spool file's records go to the driver, which writes
    them; the path returned is the one the file will have there."""

    def __init__(self, outbox: queue.Queue):
        self.outbox = outbox

    def write(self, run_id: str, name: str, rows: list[dict]) -> Path:
        self.outbox.put(FileToWrite(run_id, name, rows))
        return Path(run_id) / f"{name}.jsonl"


class _Shared(SpoolWriter):
    """The worker's writer with --ray-spool shared: it writes the spool file itself, then tells the driver."""

    def __init__(self, spool: str, outbox: queue.Queue):
        super().__init__(spool)
        self.outbox = outbox

    def write(self, run_id: str, name: str, rows: list[dict], replace: bool = True) -> Path:
        path = super().write(run_id, name, rows, replace)
        self.outbox.put(FileWritten(run_id, name, str(path)))
        return path


class _NoBar:
    """The worker's progress bar: the driver draws the one bar."""

    total = 0

    def update(self, n: int = 1) -> None:
        pass

    def refresh(self) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass


# The driver side: the actors, the shares handed out, the records written, the workers lost.

def run_on_ray(cfg: SweepConfig, progress: bool, sweep_id: str) -> Outcome:
    """Run the sweep's shares on Ray workers (or, with --replicas, the replica sweep); return the spool files
    written. Ray missing or unreachable fails here with one line, before any work."""
    from tqdm import tqdm

    # 1. Reach the cluster (one clear line if we cannot), and check it has the device asked for.
    started_here = not initialised()
    ray = connect(cfg.ray)
    try:
        check_devices(ray, cfg)
        driver = Driver(cfg, ray, tqdm(total=cfg.jobs_total(), unit="job", disable=not progress, file=sys.stderr))
        try:
            # 2. The replica sweep, or the shares of the plan handed out to the workers.
            if cfg.replicas:
                run_replicas(driver, sweep_id)
            else:
                driver.run_shares(sweep_id)
        finally:
            driver.bar.close()
        return driver.outcome
    finally:
        if started_here:
            ray.shutdown()


def check_devices(ray, cfg: SweepConfig) -> None:
    """A CUDA sweep needs GPUs in the cluster; workers and replicas must fit in it."""
    check_fits(ray, cfg.device, ([cfg.workers] if cfg.workers else []) + list(cfg.replicas or ()), "workers")


class Driver:
    """The driver's side of a Ray sweep: make workers, hand out shares, write or note each spool file, and
    record what a lost worker left unfinished."""

    def __init__(self, cfg: SweepConfig, ray, bar):
        self.cfg, self.ray, self.bar = cfg, ray, bar
        self.writer = SpoolWriter(cfg.spool)
        self.outcome = Outcome()
        self.lock = threading.Lock()

    # Workers.

    def workers(self, n: int, sweep_id: str, name: str | None = None) -> list:
        """n workers, their pipelines loaded; a worker that cannot load its model fails here, with its error.
        Each is a named actor, `<name or sweep id>-worker-<i>`, so that an operator (or a test) can find it."""
        options, threads = actor_options(self.ray, self.cfg.device, n)
        remote = self.ray.remote(SweepWorker)
        cfg = _for_worker(self.cfg)
        actors = [remote.options(name=f"{name or sweep_id}-worker-{i}", max_restarts=RESTARTS, max_task_retries=0,
                                 **options).remote(
            cfg, sweep_id, threads, self.cfg.ray_spool == "shared") for i in range(n)]
        try:
            self.ray.get([a.ready.remote() for a in actors])
        except self.ray.exceptions.RayError as exc:
            for a in actors:
                self.ray.kill(a)
            raise ValueError(f"a Ray worker could not start: {cause(exc)}") from None
        return actors

    def run_shares(self, sweep_id: str) -> None:
        """Every run of every size as one share, handed out to the workers as they come free."""
        sizes = plan.plan(self.cfg)
        shares: queue.Queue = queue.Queue()
        for s, size in enumerate(sizes):
            for r in range(len(size.runs)):
                shares.put((s, r))
        n = self.cfg.workers or (_slots(self.ray, self.cfg))
        n = min(n, shares.qsize())
        actors = self.workers(n, sweep_id)
        threads = [threading.Thread(target=self._serve_shares, args=(a, shares), daemon=True) for a in actors]
        try:
            self.join(threads, actors)
        finally:  # the workers' CPUs or GPUs go back to the cluster now, not when Ray notices the handles gone
            for a in actors:
                self.ray.kill(a, no_restart=True)
        left = []
        while not shares.empty():
            left.append(shares.get())
        for s, r in left:  # every worker was lost: say which runs were never run
            run = sizes[s].runs[r]
            self.outcome.unwritten.append(Unwritten(f"run {run.mode} {run.height}x{run.width}", "",
                                                    "every Ray worker was lost before it ran"))

    def _serve_shares(self, actor, shares: queue.Queue) -> None:
        """One worker's loop: take a share, run it; after a loss, go on if Ray restarted the worker."""
        while True:
            try:
                s, r = shares.get_nowait()
            except queue.Empty:
                return
            pending = self.call(actor.share, s, r)
            if pending is None:
                continue
            if not pending.runs:   # lost before it began: another worker (or this one, restarted) runs it
                shares.put((s, r))
            if not self.alive(actor):
                return

    def join(self, threads: list, actors: list) -> None:
        """Start the threads and wait for them; on Ctrl-C stop the workers (what they wrote is kept)."""
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except KeyboardInterrupt:
            for a in actors:
                self.ray.kill(a, no_restart=True)
            raise

    def together(self, calls: dict) -> list:
        """Make the calls {actor: (method, args, pending)} at once and wait for all: a replica sweep's barrier.
        Return the actors whose call ended well (a lost one is recorded and left out from then on)."""
        ok = {}

        def one(actor, method, args, pending):
            ok[actor] = self.call(method, *args, pending=pending) is None

        threads = [threading.Thread(target=one, args=(a, *c), daemon=True) for a, c in calls.items()]
        self.join(threads, list(calls))
        return [a for a in calls if ok.get(a)]

    def alive(self, actor) -> bool:
        """Whether the worker answers (after Ray restarted it, with its pipeline loaded again)."""
        try:
            self.ray.get(actor.ready.remote())
            return True
        except self.ray.exceptions.RayError:
            return False

    # Messages.

    def call(self, method, *args, pending: Pending | None = None) -> Pending | None:
        """Call a streaming worker method and handle its messages; None when it ended well, else what was in
        flight when the worker was lost (already recorded as failed). `pending` carries a worker's open runs
        from one call to the next (a replica sweep opens a size in one call and closes it in another)."""
        pending = pending if pending is not None else Pending()
        try:
            for ref in method.options(num_returns="streaming").remote(*args):
                self.handle(self.ray.get(ref), pending)
        except self.ray.exceptions.RayActorError as exc:
            self.lost(pending, f"the Ray worker was lost: {loss(exc)}")
            return pending
        except self.ray.exceptions.RayTaskError as exc:  # the work itself raised: a bug, not a lost worker
            self.lost(pending, f"the Ray worker failed: {cause(exc)}")
            return pending
        return None

    def handle(self, message: SweepMessage, pending: Pending) -> None:
        if isinstance(message, JobStarting):
            pending.runs[message.run["run_id"]] = message.run
            pending.job = (message.run, message.job, time.monotonic())
            return
        run_id, name, kind = message.run_id, message.name, file_kind(message.name)
        if pending.job is not None and pending.job[1]["job_id"] == name:
            pending.job = None
        if kind == "run_end":
            pending.closed.add(run_id)
        if isinstance(message, FileToWrite):
            self.write(run_id, name, message.rows, f"spool file {name} of run {run_id}")
        else:  # FileWritten: by the worker on the shared spool
            with self.lock:
                self.outcome.append(Path(message.path))
        if kind == "job":
            with self.lock:
                self.bar.update()

    def write(self, run_id: str, name: str, rows: list[dict], what: str, replace: bool = True) -> None:
        """Write one spool file here; a failure is reported (stderr and the outcome) and the sweep goes on."""
        with self.lock:
            try:
                write_or_report(self.outcome, lambda: self.writer.write(run_id, name, rows, replace=replace),
                                self.writer.spool_dir / run_id / f"{name}.jsonl", what)
            except FileExistsError:  # the worker's own file came first: it stands
                pass

    def lost(self, pending: Pending, reason: str) -> None:
        """Record what a lost worker left: the job in flight as failed, and each open run's end with the
        reason."""
        from tqdm import tqdm

        if pending.job is not None:
            run, job, since = pending.job
            job = {**job, "error": reason, "wall_s": time.monotonic() - since}
            self.write(run["run_id"], job["job_id"], [run, job], f"the lost job {job['job_id']}", replace=False)
        for run_id, run in pending.runs.items():
            if run_id not in pending.closed:
                self.write(run_id, new_id(FILE_KINDS["run_end"]), [{**run, "stop_reason": reason}],
                           f"the end record of run {run_id}")
        if pending.runs:
            tqdm.write(f"warning: {reason}; its job in flight is recorded as failed, the rest of the sweep goes on",
                       file=sys.stderr)


def _slots(ray, cfg: SweepConfig) -> int:
    return gpu_count(ray) if cfg.device == "cuda" else cpu_slots(ray)


def _for_worker(cfg: SweepConfig) -> SweepConfig:
    """The settings a worker runs with: the sweep's, in its own process (no Ray of its own)."""
    import dataclasses

    return dataclasses.replace(cfg, ray=None, workers=None, replicas=None, ray_spool="driver")
