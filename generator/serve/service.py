"""The image server's engine (`python -m generator serve`): one thread owns the pipeline and runs one scheduling
policy of scheduler.py (fifo, batch, stream) over requests that HTTP handlers hand it while it works.

- the server's settings: `ServeConfig` (config.py).
- `Service`: `submit(prompts, seeds)` puts one request per image into a bounded queue and returns a `Ticket`
  (`QueueFull` when the images waiting would pass `queue_limit`); `cancel(ticket)` takes a client's images
  out: queued ones never run, a stream request's slot is freed at the next step boundary, an image inside a
  whole job is dropped when the job ends; `stop()` finishes what was taken, then writes the last records.
- Records: the traffic served since the server last went idle is one load level (arrival `http`), written
  through the spool contract as load.py writes a level (router.level_records): each request (one image) with
  its arrival, start, finish and batch, each unit of work. A request whose client went away has status
  `cancelled`; one whose work failed, `error` and the reason. Written when the server has been idle for
  `record_idle` seconds, and on stop.
- `metrics()`: counts and the queue, for server.py's Prometheus text.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from dataclasses import dataclass, field

import torch

from generator.pipelines import models
from generator.records.ids import hostname, new_id, utc_now_iso
from generator.records.outcome import Outcome, error_line, write_or_report
from generator.serve.config import ServeConfig
from generator.serve.engine import RealClock, Worker
from generator.serve.levels import Level
from generator.serve.load import shared_fields
from generator.serve.router import Served, Work, level_records
from generator.serve.scheduler import Done, Launch, Policy, Request
from spool import FILE_KINDS, SpoolWriter

CANCELLED = "client disconnected"


class QueueFull(Exception):
    """The images waiting would pass the queue limit; `too_big`: the request's n alone passes it."""

    def __init__(self, message: str, too_big: bool):
        super().__init__(message)
        self.too_big = too_big


class Stopping(Exception):
    """The server is shutting down and takes no new request."""


@dataclass
class Ticket:
    """One HTTP request's images: their request ids and the future of their PIL images, in order."""

    ids: tuple[int, ...]
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    images: dict = field(default_factory=dict)
    gone: bool = False    # the client went away (set by the handler; the engine reads it)


@dataclass
class Counters:
    taken: int = 0        # images accepted
    finished: int = 0     # images drawn and answered
    cancelled: int = 0    # images whose client went away
    failed: int = 0       # images whose work raised
    refused: int = 0      # requests refused at the queue
    launches: int = 0     # units of work run
    last_rows: int = 0    # rows of the last unit of work
    levels: int = 0       # load levels written


class Service:
    """The engine thread and its queue. `start()` loads the pipeline in the thread (`ready` is set once it is
    loaded, `load_error` holds why it could not be); `submit`, `cancel`, `stop` from any thread."""

    def __init__(self, cfg: ServeConfig, sweep_id: str | None = None):
        self.cfg = cfg
        self._sweep_id = sweep_id or new_id("serve")   # the records' sweep: its own, or one it joins (the demo)
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.model_id: str | None = None
        self.pipe = None
        self.counters = Counters()
        self.written = Outcome()
        self._inbox: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0                 # images taken, not yet started
        self._next_id = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)

    # -- from any thread ------------------------------------------------------------------------------

    def start(self) -> Service:
        self._thread.start()
        return self

    def submit(self, prompts: list[str], seeds: list[int] | None = None) -> Ticket:
        """Take one request per image, or raise QueueFull / Stopping (nothing taken). Without seeds, image i
        of the server's is drawn with the server's seed + i."""
        n = len(prompts)
        with self._lock:
            if self._stopping:
                raise Stopping("the server is shutting down")
            if self._waiting + n > self.cfg.queue_limit:
                self.counters.refused += 1
                raise QueueFull(f"the queue holds at most {self.cfg.queue_limit} images waiting; {self._waiting} "
                                f"wait now and this request asks for {n}", too_big=n > self.cfg.queue_limit)
            ids = tuple(range(self._next_id, self._next_id + n))
            self._next_id += n
            self._waiting += n
            self.counters.taken += n
            ticket = Ticket(ids)
            seeds = list(seeds) if seeds is not None else [self.cfg.seed + i for i in ids]
            self._inbox.put(("ask", ticket, list(prompts), seeds))
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """The client went away: its images not finished are dropped and recorded as cancelled."""
        ticket.gone = True
        if not ticket.future.done():
            self._inbox.put(("cancel", ticket))

    def stop(self, timeout: float | None = None) -> None:
        """Take no new request, finish what was taken, write the last records; wait for the thread."""
        with self._lock:
            self._stopping = True
        self._inbox.put(("stop",))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def metrics(self) -> dict:
        with self._lock:
            c = self.counters
            return {"images_taken": c.taken, "images_finished": c.finished, "images_cancelled": c.cancelled,
                    "images_failed": c.failed, "requests_refused": c.refused, "queue_images": self._waiting,
                    "queue_limit": self.cfg.queue_limit, "launches": c.launches, "last_batch_rows": c.last_rows,
                    "levels_written": c.levels, "ready": int(self.ready.is_set())}

    def prompt_too_long(self, prompt: str) -> str | None:
        """Why a prompt is too long for the model's tokenizer, or None."""
        tokenizer = getattr(self.pipe, "tokenizer", None)
        if tokenizer is None:
            return None
        limit = tokenizer.model_max_length
        tokens = len(tokenizer(prompt).input_ids)
        return None if tokens <= limit else f"prompt is {tokens} tokens; the model's tokenizer takes at most {limit}"

    # -- the engine thread ----------------------------------------------------------------------------

    @torch.no_grad()  # grad mode is per thread: this one's starts on
    def _main(self) -> None:
        # 1. Load the pipeline (the server answers 503 until it is ready).
        cfg = self.cfg
        try:
            self.pipe, self.model_id = models.load_pipeline("txt2img", cfg.model, seed=cfg.seed, device=cfg.device,
                                                            dtype=getattr(torch, cfg.dtype), arch=cfg.arch)
            self.worker = Worker(self.pipe, height=cfg.resolution, width=cfg.resolution, steps=cfg.steps,
                                 guidance=cfg.guidance, prompt_of=lambda r: self._prompt[r.id],
                                 seed_of=lambda r: self._seed[r.id], device=cfg.device, keep_images=True,
                                 stream=cfg.policy == "stream")
        except Exception as exc:  # the server stays up and says why on every request
            self.load_error = error_line(exc)
            self.ready.set()
            return
        self.writer = SpoolWriter(cfg.spool)
        self.policy = Policy(cfg.policy, cfg.max_batch, cfg.max_delay)
        self._prompt, self._seed, self._ticket = {}, {}, {}
        self._started: dict[int, tuple[float, int, int]] = {}
        self._new_window()
        self.ready.set()
        # 2. Serve until stopped and empty.
        self._loop()

    def _new_window(self) -> None:
        self.clock = RealClock()
        self.served = Served(new_id(FILE_KINDS["load_level"]), utc_now_iso())
        self._seed_log: dict[int, int] = {}
        self._work_index = 0

    def _loop(self) -> None:
        stopping = False
        while True:
            # 1. Everything that has come in joins the queue (or leaves it); stop once stopped and empty.
            stopping |= self._drain(block=False, timeout=None)[1]
            if stopping and self.policy.idle:
                break
            decision = self.policy.next(self.clock.now())
            # 2. Work to do: do it.
            if isinstance(decision, Launch):
                self._run(decision)
            # 3. Idle: wait for a request; after record_idle seconds of none, record the traffic so far.
            elif self.policy.idle:
                got, stop = self._drain(block=True, timeout=self.cfg.record_idle)
                stopping |= stop
                if not got and self.served.asked:
                    self._record()
            # 4. A batch filling: wait for a request or its deadline.
            else:
                until = decision.until_s
                stopping |= self._drain(block=True, timeout=None if until is None else
                                        max(0.0, until - self.clock.now()))[1]
        if self.served.asked:
            self._record()

    def _drain(self, block: bool, timeout: float | None) -> tuple[bool, bool]:
        """Move what the handlers sent into the policy: (anything came, a stop came)."""
        stop = False
        try:
            item = self._inbox.get(block=block, timeout=timeout)
        except queue.Empty:
            return False, False
        while True:
            kind = item[0]
            if kind == "stop":
                stop = True
            elif kind == "ask":
                self._ask(*item[1:])
            elif kind == "cancel":
                self._cancel(item[1])
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True, stop

    def _ask(self, ticket: Ticket, prompts: list[str], seeds: list[int]) -> None:
        now = self.clock.now()
        for rid, prompt, seed in zip(ticket.ids, prompts, seeds):
            request = Request(rid, now, self.cfg.steps)
            self._prompt[rid], self._seed[rid], self._ticket[rid] = prompt, seed, ticket
            self._seed_log[rid] = seed
            self.served.ask(0, request)
            self.policy.arrive(request)

    def _cancel(self, ticket: Ticket) -> None:
        """Queued images leave the queue; stream images leave the engine (their slots free); images inside a
        running job are dropped when it ends (they are no longer in `_ticket`)."""
        gone = [rid for rid in ticket.ids if rid in self._ticket]
        queued = [r for r in self.policy.queue if r.id in gone]
        for r in queued:
            self.policy.queue.remove(r)
        active = [r for r in self.policy.active if r.id in gone]
        for r in active:
            self.policy.active.remove(r)
            self.policy.steps_done.pop(r.id, None)
        engine = getattr(self.worker, "engine", None)
        if engine is not None:
            engine.drop([r.id for r in active if r.id in engine])
        with self._lock:
            self._waiting -= len(queued)
            self.counters.cancelled += len(gone)
        for rid in gone:
            self._forget(rid)
            self.served.drop(rid, "cancelled", CANCELLED)
        if not ticket.future.done():
            ticket.future.cancel()

    def _run(self, launch: Launch) -> None:
        start = self.clock.now()
        fresh = [r for r in launch.requests if r.id not in self._started]
        for r in launch.requests:
            first = self._started.setdefault(r.id, (start, self._work_index, 0))
            self._started[r.id] = (first[0], first[1], max(first[2], len(launch.requests)))
        with self._lock:
            self._waiting -= len(fresh)
            self.counters.launches += 1
            self.counters.last_rows = len(launch.requests)
        try:
            finished = self.worker.run(self.policy, launch)
            failure = None
        except Exception as exc:  # recorded with its requests; the server goes on
            finished, failure = (), error_line(exc)
        end = self.clock.now()
        self.served.worked(Work(0, self._work_index, launch.kind, start, end, len(launch.requests), len(finished)))
        for r in finished:
            first, group, rows = self._started.pop(r.id)
            image = self.worker.images.pop(r.id, None)
            ticket = self._ticket.get(r.id)
            if ticket is None:  # cancelled while queued or in the stream engine: already recorded
                continue
            if ticket.gone:     # its client went away while the job ran: the image is dropped
                self.served.drop(r.id, "cancelled", CANCELLED)
                with self._lock:
                    self.counters.cancelled += 1
                self._forget(r.id)
                continue
            self.served.finished(0, Done(r, first, end, rows, group))
            ticket.images[r.id] = image
            with self._lock:
                self.counters.finished += 1
            self._forget(r.id)
            if len(ticket.images) == len(ticket.ids) and not ticket.future.done():
                ticket.future.set_result([ticket.images[i] for i in ticket.ids])
        if failure is not None:
            self._fail(launch, failure)
        self._work_index += 1

    def _fail(self, launch: Launch, reason: str) -> None:
        """The requests of a failed unit of work: answered with the error, recorded with it, out of the engine."""
        for r in launch.requests:
            if r in self.policy.active:
                self.policy.active.remove(r)
                self.policy.steps_done.pop(r.id, None)
            engine = getattr(self.worker, "engine", None)
            if engine is not None and r.id in engine:
                engine.drop([r.id])
            self._started.pop(r.id, None)
            ticket = self._ticket.get(r.id)
            if ticket is not None:
                self.served.drop(r.id, "error", reason)
                with self._lock:
                    self.counters.failed += 1
                self._forget(r.id)
                if not ticket.future.done():
                    ticket.future.set_exception(RuntimeError(reason))

    def _forget(self, rid: int) -> None:
        self._prompt.pop(rid, None)
        self._seed.pop(rid, None)
        self._ticket.pop(rid, None)

    def _record(self) -> None:
        """The traffic since the last record, as one load level; then a new window on a new clock."""
        cfg, served = self.cfg, self.served
        place = {"host": hostname(), "device_name": self.device_name, "threads": torch.get_num_threads(),
                 "model_id": self.model_id}
        shared = dict(shared_fields(cfg, place, None, None, self.sweep_id), max_batch=self.policy.max_batch)
        level = Level(cfg.policy, "http", ())
        rows = level_records(level, cfg, shared, served, lambda r: self._seed_log.get(r.id))
        write_or_report(self.written, lambda: self.writer.write(served.level_id, served.level_id, rows),
                        self.writer.spool_dir / served.level_id / f"{served.level_id}.jsonl",
                        f"served traffic {served.level_id}")
        with self._lock:
            self.counters.levels += 1
        self._new_window()

    @property
    def device_name(self) -> str:
        return torch.cuda.get_device_name() if self.cfg.device.startswith("cuda") else self.cfg.device

    @property
    def sweep_id(self) -> str:
        return self._sweep_id
