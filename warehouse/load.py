"""Many requests at once: what the load levels of a sweep say (rows of the view load_latency).

A load level is one scheduling policy (fifo, batch, stream) at one offered load: Poisson arrivals at a
rate, a closed loop of N clients, a trace, or a burst of N requests at once. From its rows:
- capacity under a latency objective: per policy, the highest throughput measured at a Poisson level
  whose latency percentile stayed within the objective, and the lowest offered load that missed it;
- bursts: per policy, the time N requests sent at once took until the last finished, over the time of
  one request sent alone (a ratio near 1: the extra requests rode along; near N: one after another);
- the prediction against the measurement: (predicted - measured) / measured of p50 and p99, where the
  prediction is the discrete-event simulation of the policy with the calibrated batch cost.

Pure functions on plain data, no SQL: the rows come from queries.load_levels (or are made by hand).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

PERCENTILES = ("p50", "p90", "p99")
# A prediction parts from the measurement when they differ by more than this share of the measurement.
TOLERANCE = 0.15


def _rows(levels) -> list[dict]:
    """Level rows as dicts, from a DataFrame or any iterable of mappings."""
    if isinstance(levels, pd.DataFrame):
        return levels.to_dict("records")
    return [dict(r) for r in levels]


def _num(x) -> float | None:
    """A number, or None for a missing one (None, NaN, pandas' NA)."""
    if x is None or x is pd.NA:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _poisson(rows: list[dict]) -> list[dict]:
    """The Poisson levels with an offered load, by policy and offered load."""
    out = [r for r in rows if r.get("arrival") == "poisson" and _num(r.get("offered_rps")) is not None]
    return sorted(out, key=lambda r: (str(r["policy"]), _num(r["offered_rps"])))


def _policies(rows: list[dict]) -> list[str]:
    return sorted({str(r["policy"]) for r in rows})


# 1. Capacity under a latency objective.

@dataclass(frozen=True)
class Capacity:
    """One policy under a latency objective, over its Poisson levels."""

    policy: str
    objective_s: float
    percentile: str               # p50 | p90 | p99
    levels: int                   # Poisson levels measured
    served_rps: float | None      # the highest measured throughput of a level within the objective; None: none was
    served_offered_rps: float | None  # that level's offered load
    first_miss_rps: float | None  # the lowest offered load whose percentile missed the objective; None: none did
    first_miss_factor: float | None   # its load factor (offered / capacity), where known


def capacity_at(levels, objective_s: float, percentile: str = "p99") -> dict[str, Capacity]:
    """Per policy with Poisson levels: the most it served within the objective, and where it first missed it.
    A level with no measured percentile (no request ok) misses."""
    if percentile not in PERCENTILES:
        raise ValueError(f"percentile must be one of {', '.join(PERCENTILES)}, got {percentile!r}")
    if not objective_s > 0:
        raise ValueError(f"objective must be > 0 seconds, got {objective_s}")
    rows = _poisson(_rows(levels))
    out = {}
    for policy in _policies(rows):
        mine = [r for r in rows if r["policy"] == policy]
        within = [_num(r.get(f"{percentile}_s")) is not None and _num(r[f"{percentile}_s"]) <= objective_s
                  for r in mine]
        met = [r for r, ok in zip(mine, within) if ok and _num(r.get("throughput_rps")) is not None]
        missed = [r for r, ok in zip(mine, within) if not ok]
        best = max(met, key=lambda r: _num(r["throughput_rps"]), default=None)
        miss = missed[0] if missed else None
        out[policy] = Capacity(
            policy=policy, objective_s=float(objective_s), percentile=percentile, levels=len(mine),
            served_rps=_num(best["throughput_rps"]) if best else None,
            served_offered_rps=_num(best["offered_rps"]) if best else None,
            first_miss_rps=_num(miss["offered_rps"]) if miss else None,
            first_miss_factor=_num(miss.get("load_factor")) if miss else None)
    return out


def default_objective(levels) -> float | None:
    """A latency objective to start from: twice the median p50 of the lowest Poisson load (of every
    policy), to two significant figures; without Poisson levels, of all levels. None without any p50."""
    rows = _rows(levels)
    poisson = _poisson(rows)
    if poisson:
        lowest = min(_num(r["offered_rps"]) for r in poisson)
        rows = [r for r in poisson if _num(r["offered_rps"]) == lowest]
    p50 = [_num(r.get("p50_s")) for r in rows]
    p50 = sorted(x for x in p50 if x is not None)
    if not p50:
        return None
    median = (p50[(len(p50) - 1) // 2] + p50[len(p50) // 2]) / 2
    return float(f"{2 * median:.2g}") if median > 0 else None


# 2. Bursts: N requests at once against one.

@dataclass(frozen=True)
class Burst:
    """One policy: a burst of n requests at once, until the last finished, against one request alone."""

    policy: str
    n: int
    one_s: float   # latency of the one request sent alone
    all_s: float   # the last finish of the burst of n (all arrived at 0: its longest latency)

    @property
    def ratio(self) -> float:
        return self.all_s / self.one_s


def burst(levels) -> list[Burst]:
    """Per policy with both a burst of 1 and a burst of N > 1 (the largest) whose every request finished ok:
    the burst against the one, by ratio (smallest first)."""
    rows = [r for r in _rows(levels) if r.get("arrival") == "burst" and _num(r.get("clients")) is not None]
    out = []
    for policy in _policies(rows):
        mine = [r for r in rows if r["policy"] == policy and _num(r.get("max_s")) is not None
                and _num(r.get("requests_ok")) == _num(r.get("requests"))]
        ones = [r for r in mine if _num(r["clients"]) == 1 and _num(r["max_s"]) > 0]
        many = [r for r in mine if _num(r["clients"]) > 1]
        if not ones or not many:
            continue
        top = max(many, key=lambda r: _num(r["clients"]))
        out.append(Burst(policy, int(_num(top["clients"])), _num(ones[0]["max_s"]), _num(top["max_s"])))
    return sorted(out, key=lambda b: (b.ratio, b.policy))


# 3. The simulation against the measurement.

@dataclass(frozen=True)
class Gap:
    """One level: the predicted and measured p50 and p99, and (predicted - measured) / measured of each."""

    level_id: str
    policy: str
    arrival: str
    offered_rps: float | None
    load_factor: float | None
    clients: int | None
    p50_s: float | None
    predicted_p50_s: float | None
    p50_gap: float | None
    p99_s: float | None
    predicted_p99_s: float | None
    p99_gap: float | None


def _gap(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None or measured <= 0:
        return None
    return (predicted - measured) / measured


def prediction_gaps(levels) -> list[Gap]:
    """Per level, in the order given: how far the prediction is from the measurement (None where either is
    missing)."""
    out = []
    for r in _rows(levels):
        p50, p99 = _num(r.get("p50_s")), _num(r.get("p99_s"))
        pp50, pp99 = _num(r.get("predicted_p50_s")), _num(r.get("predicted_p99_s"))
        clients = _num(r.get("clients"))
        out.append(Gap(str(r.get("level_id")), str(r["policy"]), str(r.get("arrival")), _num(r.get("offered_rps")),
                       _num(r.get("load_factor")), None if clients is None else int(clients),
                       p50, pp50, _gap(pp50, p50), p99, pp99, _gap(pp99, p99)))
    return out


def parts_ways(gap: float | None, tolerance: float = TOLERANCE) -> bool:
    """The prediction and the measurement differ by more than `tolerance` of the measurement."""
    return gap is not None and abs(gap) > tolerance


# 4. The curves the page draws (long form).

def latency_curves(levels) -> pd.DataFrame:
    """Poisson levels: p50 and p99 against offered load, measured and predicted, one row per point."""
    rows = []
    for r in _poisson(_rows(levels)):
        for q in ("p50", "p99"):
            for source, column in (("measured", f"{q}_s"), ("predicted", f"predicted_{q}_s")):
                value = _num(r.get(column))
                if value is not None:
                    rows.append({"policy": r["policy"], "offered_rps": _num(r["offered_rps"]),
                                 "load_factor": _num(r.get("load_factor")), "percentile": q, "source": source,
                                 "latency_s": value})
    return pd.DataFrame(rows, columns=["policy", "offered_rps", "load_factor", "percentile", "source", "latency_s"])


def throughput_curves(levels) -> pd.DataFrame:
    """Poisson levels: throughput against p99 latency, measured and predicted, one row per point."""
    rows = []
    for r in _poisson(_rows(levels)):
        for source, p99, rps in (("measured", "p99_s", "throughput_rps"),
                                 ("predicted", "predicted_p99_s", "predicted_rps")):
            if _num(r.get(p99)) is not None and _num(r.get(rps)) is not None:
                rows.append({"policy": r["policy"], "offered_rps": _num(r["offered_rps"]), "source": source,
                             "p99_s": _num(r[p99]), "throughput_rps": _num(r[rps])})
    return pd.DataFrame(rows, columns=["policy", "offered_rps", "source", "p99_s", "throughput_rps"])


def load_groups(levels) -> dict[str, list[str]]:
    """The loads of the levels (the policies' levels at one offered load, client count or trace), in the order
    given: a name for each ('poisson 2.5 requests/s', 'burst of 4') -> its level ids."""
    groups: dict[str, list[str]] = {}
    for r in _rows(levels):
        rate, clients = _num(r.get("offered_rps")), _num(r.get("clients"))
        name = (f"{r['arrival']} {rate:.3g} requests/s" if rate is not None
                else f"{r['arrival']} of {clients:.0f}" if clients is not None else str(r["arrival"]))
        groups.setdefault(name, []).append(str(r["level_id"]))
    return groups
