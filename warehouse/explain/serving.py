"""Sentences: many requests at once. From warehouse/load.py's bursts, capacities and prediction gaps."""

from __future__ import annotations

from ..load import TOLERANCE, Burst, Capacity, Gap, SharedCores, Tail, Versus, parts_ways

NO_LOAD = "No load run in this sweep: run `python -m generator load`."


def _fig(x: float) -> str:
    """A time or a rate: one decimal from 1 up (2.0, 12.3), two significant figures below (0.35, 0.042)."""
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}"


def _load(offered_rps: float, own_factor: float | None) -> str:
    """An offered load in requests/s (the axis every policy shares), with what it is to the policy's own
    capacity where that is known."""
    said = f"{_fig(offered_rps)} requests/s"
    return said + (f" ({own_factor:.1f}x its capacity)" if own_factor is not None else "")


def _names(policies: list[str]) -> str:
    named = [f"`{p}`" for p in policies]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def load_burst(bursts: list[Burst]) -> str | None:
    """N requests sent at once against one alone, per policy (load.burst): '**8 requests sent at once**
    finished in 1.4x the time of one under `batch`, 7.9x under `fifo`.' One sentence per burst size."""
    if not bursts:
        return None
    sentences = []
    for n in sorted({b.n for b in bursts}):
        mine = [b for b in bursts if b.n == n]
        clauses = [f"{b.ratio:.1f}x" + ("" if b.too_few else f" [{b.ratio_low:.1f}x–{b.ratio_high:.1f}x]")
                   + (" the time of one" if i == 0 else "") + f" under `{b.policy}`" for i, b in enumerate(mine)]
        sentence = f"**{n} requests sent at once** finished in {', '.join(clauses)}"
        few = [b for b in mine if b.too_few]
        if few:
            sentence += (f" (medians of {min(b.bursts for b in few)} bursts of each size: too few for a 95% "
                         f"interval, {few[0].needed} needed; `--burst-repeats`)")
        sentences.append(sentence + ".")
        sentences += [f"Under `{b.policy}` the request sent alone waited the batcher's whole {_fig(b.waited_s)} s "
                      f"delay for a batch to fill, {b.waited_s / b.one_s:.0%} of its {_fig(b.one_s)} s: the delay, "
                      "not the work, set that part of the time of one." for b in mine if b.waited_s is not None]
    return " ".join(sentences)


def load_capacity(capacities: dict[str, Capacity]) -> str | None:
    """Per policy, the most it served within a latency objective (load.capacity_at), the largest first; the
    policies that missed the objective at every Poisson load measured last."""
    if not capacities:
        return None
    first = next(iter(capacities.values()))
    served = sorted((c for c in capacities.values() if c.served_rps is not None),
                    key=lambda c: (-c.served_rps, c.policy))
    missed = sorted(c.policy for c in capacities.values() if c.served_rps is None)
    clauses = [f"`{c.policy}` " + ("served up to " if i == 0 else "") + f"{_fig(c.served_rps)} requests/s"
               + _unsure(c) for i, c in enumerate(served)]
    if missed:
        clauses.append(f"{_names(missed)} missed it at every load measured"
                       + "".join(_unsure(c) for c in capacities.values() if c.served_rps is None and c.unsure_rps))
    return (f"Within a {first.percentile} of {_fig(first.objective_s)} s at that load and every lower one, "
            f"{'; '.join(clauses)}.")


def _unsure(c: Capacity) -> str:
    """Why a capacity is not sure at 95%, where it is not."""
    if c.unsure_rps is None:
        return ""
    if c.too_few:
        return (f" (not sure: at {_fig(c.unsure_rps)} requests/s too few requests for a 95% interval of the "
                f"{c.percentile}; {c.needed} needed)")
    return (f" (not sure: at {_fig(c.unsure_rps)} requests/s the {c.percentile}'s 95% interval reaches across "
            f"{_fig(c.objective_s)} s)")


def load_tail(t: Tail | None) -> str | None:
    """Levels whose p99 rests on too few requests to be told from their slowest one (load.tail)."""
    if t is None:
        return None
    which = "every level" if t.too_few == t.levels else f"{t.too_few} of {t.levels} levels"
    return (f"A p99 needs {t.needed} requests for a 95% interval; {which} had fewer (at most {t.most}), so "
            "their p99 is close to their slowest request and the table leaves its interval empty. "
            "More requests per level: `--min-requests`.")


def load_prediction(gaps: list[Gap], tolerance: float = TOLERANCE) -> str | None:
    """Where the simulation from the calibrated batch cost and the measurement part by more than `tolerance`
    in p99 over the Poisson loads (load.prediction_gaps): per policy, within it at every load, or the lowest
    load where they part, with both figures."""
    poisson = [g for g in gaps if g.arrival == "poisson" and g.offered_rps is not None and g.p99_gap is not None]
    if not poisson:
        return None
    agree, parted = [], []
    for policy in sorted({g.policy for g in poisson}):
        mine = sorted((g for g in poisson if g.policy == policy), key=lambda g: g.offered_rps)
        first = next((g for g in mine if parts_ways(g.p99_gap, tolerance)), None)
        if first is None:
            agree.append(policy)
        else:
            parted.append((policy, _load(first.offered_rps, first.own_factor),
                           f"predicted {_fig(first.predicted_p99_s)} s, measured {_fig(first.p99_s)} s"))
    within = f"{tolerance:.0%}"
    if agree:
        return (f"The simulation from the batch cost predicts p99 within {within} at every load for {_names(agree)}"
                + "".join(f"; for `{p}` it parts at {at}: {figures}" for p, at, figures in parted) + ".")
    return (f"The simulation from the batch cost and the measured p99 part by more than {within}: "
            + "; ".join(f"`{p}` at {at} ({figures})" for p, at, figures in parted) + ".")


def load_table_caption() -> str:
    return ("`own_factor`: the offered load over the policy's own capacity on the cost calibrated at the start of "
            "the run (fifo one request at a time, batch at its largest batch, stream in steady state with its "
            "largest batch; over HTTP, the capacity calibrated from the server's answers). `p50_low`-`p50_high`, "
            "`p99_low`-`p99_high`: 95% order-statistic intervals of the percentile from the level's own requests; "
            "empty where the requests are too few for one.")


def load_latency_caption() -> str:
    return ("Latency of the requests that finished, against the offered load (Poisson arrivals). Solid with "
            "points: measured; dashed: the discrete-event simulation of the same policy on the level's own "
            "arrival times with the batch cost calibrated at the start of the run.")


def load_throughput_caption() -> str:
    return ("Requests served per second (first arrival to last finish) against the p99 latency at each offered "
            "load: the further up and to the left, the better. Solid: measured; dashed: simulated.")


def load_goodput_caption(objective_s: float) -> str:
    return (f"Goodput: requests that finished within {_fig(objective_s)} s, per second of the level; a request "
            "that failed or took longer does not count.")


def load_servers_versus(pairs: list[Versus]) -> str | None:
    """One server with a batcher against N servers without one (load.servers_versus): per pair of setups, which
    had the lower p99 at each offered load both served in full, with both values, and at how many loads each
    was lower. Values equal to the two figures shown are called the same, not lower."""
    if not pairs:
        return None
    sentences = []
    for batcher, n in sorted({(v.batcher, v.servers) for v in pairs}):
        mine = sorted((v for v in pairs if (v.batcher, v.servers) == (batcher, n)), key=lambda v: v.offered_rps)
        one, many = mine[0].one, mine[0].many
        clauses, lower = [], {one: 0, many: 0}
        for v in mine:
            a, b = _fig(v.one_p99_s), _fig(v.many_p99_s)
            at = f"at {_fig(v.offered_rps)} requests/s"
            if a == b:
                clauses.append(f"{at} the same to two figures ({a} s)")
                continue
            first, low, high = (one, a, b) if v.one_p99_s < v.many_p99_s else (many, b, a)
            lower[first] += 1
            clauses.append(f"{at} `{first}`, {low} s against {high} s")
        text = (f"**Lower p99, `{one}` against `{many}`** at each offered load both served in full: "
                + "; ".join(clauses) + ".")
        tally = [(who, k) for who, k in lower.items() if k]
        if len(mine) > 1 and tally:
            (who, k), *other = tally
            text += (f" `{who}` was lower at {k} of {len(mine)} loads"
                     + "".join(f", `{w}` at {j}" for w, j in other) + ".")
        sentences.append(text)
    return " ".join(sentences)


def load_shared_cores(shared: list[SharedCores]) -> str | None:
    """When N servers only split the CPU cores of the machine the one server ran on (load.shared_cores): say
    so, with the threads of each, so that no speed-up from more hardware is read into the comparison."""
    if not shared:
        return None
    return " ".join(
        f"The {s.servers} servers ran on the CPU of the one machine the single server ran on (`{s.host}`), "
        f"{s.threads} torch thread{'s' if s.threads != 1 else ''} each against its {s.one_threads}: they split "
        f"its cores and add no hardware, so any difference is how the requests were scheduled, not more compute."
        for s in shared)


def load_servers_caption() -> str:
    return ("One server with a batcher (`batch` or `stream`) against N servers without one (`fifo`, behind a "
            "round-robin router: the i-th request to arrive goes to server i mod N), at the same offered loads "
            "(Poisson arrivals): latency of the requests that finished, and requests served per second.")
