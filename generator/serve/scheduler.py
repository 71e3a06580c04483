"""Serving many requests at once: three scheduling policies over a clock and a queue, and the loop that
drives them, pure (no torch, no sleeping, no wall clock) so that one code serves both the discrete-event
simulation (a synthetic or fitted cost) and a real server (a pipeline and the real clock).

Each request asks for one image of `steps` denoising steps. A policy looks at the waiting queue, the
requests in flight and the time, and says what the server does next:

- `fifo`: one request at a time, every step, then the next (a naive server);
- `batch`: dynamic batching: wait until `max_batch` requests are queued or the oldest has waited
  `max_delay_s`, then run them together, every step (Triton's dynamic batcher, Ray Serve's `@serve.batch`);
- `stream`: step-level continuous batching: at every step boundary the waiting requests join the running
  UNet batch (up to `max_batch` rows), each advances one step per call, and a request leaves when its
  last step is done (Stream Batch, arXiv 2312.12491; continuous batching in LLM servers).

A `Cost` gives the seconds of a unit of work: `job(n)` for n requests run together from start to end
(fifo, batch), `step(rows)` for one UNet call of `rows` requests at whatever step each is, and
`finish(n)` for decoding n requests that left at one step boundary (stream). `serve` is the server loop
over any clock; `simulate` runs it on a simulated clock with such a cost, and the load generator
(generator/serve/load.py) on the real clock with the pipeline doing the work.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

POLICIES = ("fifo", "batch", "stream")


@dataclass(frozen=True)
class Request:
    """One request: its id, when it arrived (s) and its steps."""

    id: int
    arrival_s: float
    steps: int


@dataclass
class Done:
    """A finished request: when it arrived, started its first step and finished, and what it ran in."""

    request: Request
    start_s: float
    finish_s: float
    batch: int            # fifo/batch: the requests run together; stream: the most rows it shared a call with
    group: int            # the batch (fifo/batch) or first call (stream) it ran in, 0-based

    @property
    def wait_s(self) -> float:
        return self.start_s - self.request.arrival_s

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.request.arrival_s


@dataclass(frozen=True)
class Launch:
    """What the server runs next: a whole job of these requests (fifo, batch) or one step of them (stream),
    and the requests that finish decoding with it (stream)."""

    kind: str                     # "job" | "step"
    requests: tuple[Request, ...]


@dataclass(frozen=True)
class Wait:
    """Nothing to run until `until_s` (or the next arrival, if sooner); None: until the next arrival."""

    until_s: float | None


def check_policy(policy: str, max_batch: int, max_delay_s: float) -> None:
    """Raise ValueError naming a bad policy, batch limit or delay."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if max_batch < 1:
        raise ValueError(f"max batch must be >= 1, got {max_batch}")
    if max_delay_s < 0:
        raise ValueError(f"max delay must be >= 0 s, got {max_delay_s}")


@dataclass
class Policy:
    """A scheduling policy's state: the queue, and in stream mode the requests in flight and their steps."""

    name: str
    max_batch: int = 8
    max_delay_s: float = 0.0
    queue: deque = field(default_factory=deque)
    active: list = field(default_factory=list)        # stream: requests in flight, in the order they joined
    steps_done: dict = field(default_factory=dict)    # stream: request id -> steps done

    def __post_init__(self):
        if self.name == "fifo":
            self.max_batch = 1
        check_policy(self.name, self.max_batch, self.max_delay_s)

    def arrive(self, request: Request) -> None:
        self.queue.append(request)

    @property
    def idle(self) -> bool:
        return not self.queue and not self.active

    def next(self, now: float) -> Launch | Wait:
        """What to run at `now`, the server being free."""
        if self.name == "stream":
            while self.queue and len(self.active) < self.max_batch:
                request = self.queue.popleft()
                self.active.append(request)
                self.steps_done[request.id] = 0
            return Launch("step", tuple(self.active)) if self.active else Wait(None)
        if not self.queue:
            return Wait(None)
        full = len(self.queue) >= self.max_batch
        due = self.queue[0].arrival_s + self.max_delay_s
        if self.name == "fifo" or full or now >= due:
            return Launch("job", tuple(self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))))
        return Wait(due)

    def stepped(self, launch: Launch) -> tuple[Request, ...]:
        """After a stream step: advance every request in it; return (and drop) the ones now finished."""
        done = []
        for request in launch.requests:
            self.steps_done[request.id] += 1
            if self.steps_done[request.id] >= request.steps:
                done.append(request)
        for request in done:
            self.active.remove(request)
            del self.steps_done[request.id]
        return tuple(done)


class Cost:
    """Seconds of work, from the batch-cost model: job(n), step(rows), finish(n) (see the module docstring)."""

    def job(self, n: int) -> float:
        raise NotImplementedError

    def step(self, rows: int) -> float:
        raise NotImplementedError

    def finish(self, n: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class LinearCost(Cost):
    """t = fixed + marginal x n for each unit of work: a whole job of `steps` steps (fifo, batch), one step
    (stream), and the decode of the requests that leave a stream step together."""

    job_fixed_s: float
    job_marginal_s: float
    step_fixed_s: float
    step_marginal_s: float
    finish_fixed_s: float = 0.0
    finish_marginal_s: float = 0.0

    def job(self, n: int) -> float:
        return self.job_fixed_s + self.job_marginal_s * n

    def step(self, rows: int) -> float:
        return self.step_fixed_s + self.step_marginal_s * rows

    def finish(self, n: int) -> float:
        return self.finish_fixed_s + self.finish_marginal_s * n if n else 0.0


class SimClock:
    """A simulated clock: waiting jumps to the time, work spends its cost."""

    def __init__(self, start_s: float = 0.0):
        self.t = start_s

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def spend(self, seconds: float) -> None:
        self.t += seconds


def leaving(policy: Policy, launch: Launch) -> tuple[Request, ...]:
    """The requests a unit of work finishes: all of a job; of a stream step, those whose last step it was
    (the policy advances every request in it)."""
    return launch.requests if launch.kind == "job" else policy.stepped(launch)


def serve(policy: Policy, arrivals: list[Request], clock, run, on_finish=None, on_work=None) -> list[Done]:
    """The server loop, the same for a simulated and a real clock.

    `clock` has now() and wait_until(t); `run(launch)` does the work (spends its cost on a simulated clock,
    runs the pipeline on a real one) and returns the requests it finished (see `leaving`). `on_finish(done)`
    may return a new Request (a closed loop's client asking again), `on_work(index, launch, start, end,
    finished)` hears of every unit of work. Returns every request, finished, in the order they finished."""
    pending = sorted(arrivals, key=lambda r: (r.arrival_s, r.id))
    pending = deque(pending)
    finished, index = [], 0
    started: dict[int, tuple[float, int, int]] = {}      # request id -> (start, group, most rows)
    while pending or not policy.idle:
        # 1. Everything that has arrived by now joins the queue.
        now = clock.now()
        while pending and pending[0].arrival_s <= now:
            policy.arrive(pending.popleft())
        decision = policy.next(now)
        # 2. Nothing to run: wait for the next arrival (or the batch's deadline, if sooner).
        if isinstance(decision, Wait):
            nxt = pending[0].arrival_s if pending else None
            if decision.until_s is not None and (nxt is None or decision.until_s < nxt):
                nxt = decision.until_s
            if nxt is None:
                raise RuntimeError(f"policy {policy.name!r} waits with nothing to wait for")
            clock.wait_until(nxt)
            continue
        # 3. Run the work; record who started in it and who it finished.
        start = clock.now()
        for r in decision.requests:
            first = started.setdefault(r.id, (start, index, 0))
            started[r.id] = (first[0], first[1], max(first[2], len(decision.requests)))
        done_now = run(decision)
        end = clock.now()
        if on_work is not None:
            on_work(index, decision, start, end, done_now)
        index += 1
        for r in done_now:
            first, group, rows = started.pop(r.id)
            done = Done(r, first, end, rows, group)
            finished.append(done)
            again = on_finish(done) if on_finish is not None else None
            if again is not None:
                _insert(pending, again)
    return finished


def _insert(pending: deque, request: Request) -> None:
    """Put a request among the pending ones in arrival order."""
    at = next((i for i, r in enumerate(pending) if r.arrival_s > request.arrival_s), len(pending))
    pending.insert(at, request)


def simulate(policy: Policy, arrivals: list[Request], cost: Cost, on_finish=None) -> list[Done]:
    """Run `policy` against requests arriving at their arrival times, each unit of work taking what `cost`
    says; return every request, finished, in the order they finished. A discrete-event simulation: the
    clock jumps from event to event."""
    clock = SimClock()

    def run(launch: Launch) -> tuple[Request, ...]:
        if launch.kind == "job":
            clock.spend(cost.job(len(launch.requests)))
            return launch.requests
        clock.spend(cost.step(len(launch.requests)))
        out = leaving(policy, launch)
        clock.spend(cost.finish(len(out)))
        return out

    return serve(policy, arrivals, clock, run, on_finish=on_finish)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
