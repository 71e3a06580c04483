"""How requests arrive at the load generator's server: plain lists of scheduler.Requests (one image each),
and for a closed loop the rule that makes the next one when an image is back.

- Poisson: exponential gaps of mean 1/rate, seeded;
- burst: n requests at once;
- closed loop: N clients with no think time, each asking again the moment its request finishes;
- trace: a CSV file with a header arrival_s,prompt,seed,steps,size, every line checked before any work.
"""

from __future__ import annotations

import csv

import numpy as np

from generator.serve.scheduler import Done, Request

TRACE_FIELDS = ("arrival_s", "prompt", "seed", "steps", "size")


def poisson(rate: float, n: int, steps: int, seed: int) -> list[Request]:
    """n requests with exponential gaps of mean 1/rate, the first at the first gap."""
    if not rate > 0:
        raise ValueError(f"rate must be > 0 requests/s, got {rate}")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    return [Request(i, float(t), steps) for i, t in enumerate(np.cumsum(gaps))]


def burst(n: int, steps: int) -> list[Request]:
    """n requests at once."""
    return [Request(i, 0.0, steps) for i in range(n)]


class ClosedLoop:
    """N clients with no think time: each asks again when its image is back, until `total` were asked."""

    def __init__(self, clients: int, total: int, steps: int):
        self.first = [Request(i, 0.0, steps) for i in range(clients)]
        self.asked, self.total, self.steps = clients, max(total, clients), steps

    def again(self, done: Done) -> Request | None:
        if self.asked >= self.total:
            return None
        self.asked += 1
        return Request(self.asked - 1, done.finish_s, self.steps)


def read_trace(path: str) -> tuple[list[Request], dict[int, str], dict[int, int], int, int]:
    """(requests, prompt by id, seed by id, steps, size) from a trace CSV; every line checked before any work."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"trace {path!r} cannot be read: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [f for f in TRACE_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"trace {path!r}: the header must name {', '.join(TRACE_FIELDS)}; "
                             f"missing {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"trace {path!r} holds no requests")
    requests, prompts, seeds, shapes = [], {}, {}, set()
    for i, row in enumerate(rows):
        line = i + 2  # the header is line 1
        empty = [f for f in TRACE_FIELDS if row.get(f) in (None, "") and f != "prompt"]
        if empty:
            raise ValueError(f"trace {path!r} line {line}: missing field {empty[0]!r}")
        try:
            arrival, seed, steps, size = float(row["arrival_s"]), int(row["seed"]), int(row["steps"]), int(row["size"])
        except ValueError:
            raise ValueError(f"trace {path!r} line {line}: arrival_s must be a number and seed, steps, size "
                             f"whole numbers, got {dict((f, row[f]) for f in TRACE_FIELDS if f != 'prompt')}") from None
        if arrival < 0 or steps < 1 or size < 8 or size % 8 or seed < 0:
            raise ValueError(f"trace {path!r} line {line}: arrival_s >= 0, seed >= 0, steps >= 1 and size a "
                             f"multiple of 8 are allowed, got arrival_s {arrival}, seed {seed}, steps {steps}, "
                             f"size {size}")
        shapes.add((steps, size))
        if len(shapes) > 1:
            raise ValueError(f"trace {path!r} line {line}: asks for {steps} steps at {size} px, earlier lines for "
                             f"{sorted(shapes)[0][0]} steps at {sorted(shapes)[0][1]} px; one trace serves one "
                             "size and step count")
        requests.append(Request(i, arrival, steps))
        prompts[i], seeds[i] = row["prompt"] or "", seed
    steps, size = shapes.pop()
    return requests, prompts, seeds, steps, size
