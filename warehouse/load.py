"""Many requests at once: what the load levels of a sweep say (rows of the view load_latency).

A load level is one scheduling policy (fifo, batch, stream) at one offered load: Poisson arrivals at a
rate, a closed loop of N clients, a trace, or a burst of N requests at once. From its rows:
- capacity under a latency objective: per policy, the highest throughput measured at a Poisson level
  whose latency percentile stayed within the objective, and the lowest offered load that missed it;
- bursts: per policy, the time N requests sent at once took until the last finished, over the time of
  one request sent alone (a ratio near 1: the extra requests rode along; near N: one after another);
- the prediction against the measurement: (predicted - measured) / measured of p50 and p99, where the
  prediction is the discrete-event simulation of the policy with the calibrated batch cost;
- one server with a batcher (batch or stream) against N servers without one (fifo, behind a round-robin
  router) at the same offered loads, and whether those N servers only split one machine's cores.

A level served by N > 1 servers is its own setup ('2 servers · fifo'), never mixed with one server's; so is a
level measured at a client over HTTP ('batch over HTTP at 127.0.0.1:8000'), one per server it measured.

Pure functions on plain data, no SQL: the rows come from Warehouse.load_levels (or are made by hand).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd

import stats

PERCENTILES = ("p50", "p90", "p99")
QUANTILE = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
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


def servers_of(r: dict) -> int:
    """The servers behind a level's router (1 when not recorded: one server)."""
    n = _num(r.get("servers"))
    return 1 if n is None else int(n)


def setup(policy: str, servers: int, always: bool = False, endpoint: str | None = None) -> str:
    """How a level was served, by name: the policy alone for one server ('batch'; with `always`,
    '1 server · batch'), else '2 servers · fifo'; a level measured at a client over HTTP names its server
    ('batch over HTTP at 127.0.0.1:8000'; `policy` is what the server said of itself, or 'endpoint')."""
    if endpoint:
        return f"{policy} over HTTP at {urlsplit(endpoint).netloc or endpoint}"
    if servers == 1:
        return f"1 server · {policy}" if always else str(policy)
    return f"{servers} servers · {policy}"


def _endpoint(r: dict) -> str | None:
    e = r.get("endpoint")
    return None if e is None or e is pd.NA or (isinstance(e, float) and math.isnan(e)) else str(e)


def _who(r: dict) -> str:
    return setup(str(r["policy"]), servers_of(r), endpoint=_endpoint(r))


def _poisson(rows: list[dict]) -> list[dict]:
    """The Poisson levels with an offered load, by setup (policy, servers) and offered load."""
    out = [r for r in rows if r.get("arrival") == "poisson" and _num(r.get("offered_rps")) is not None]
    return sorted(out, key=lambda r: (_who(r), _num(r["offered_rps"])))


def _policies(rows: list[dict]) -> list[str]:
    """The setups of the rows: a policy alone for one server, '2 servers · fifo' for more."""
    return sorted({_who(r) for r in rows})


# 1. Capacity under a latency objective.

@dataclass(frozen=True)
class Capacity:
    """One policy under a latency objective, over its Poisson levels."""

    policy: str                   # the policy, or '2 servers · fifo' for a level of several servers
    objective_s: float
    percentile: str               # p50 | p90 | p99
    levels: int                   # Poisson levels measured
    served_rps: float | None      # the highest measured throughput of a level within the objective; None: none was
    served_offered_rps: float | None  # that level's offered load
    first_miss_rps: float | None  # the lowest offered load whose percentile missed the objective; None: none did
    first_miss_factor: float | None   # that load over the policy's own capacity (own_capacity), where known
    unsure_rps: float | None = None   # the lowest load of those the claim rests on (the levels that held, and
                                      # the first miss) whose percentile's 95% interval straddles the objective
                                      # or does not exist; None: sure, or no intervals given
    too_few: bool = False             # that level had too few requests for an interval of its percentile
    needed: int | None = None         # requests a level needs for one


def capacity_at(levels, objective_s: float, percentile: str = "p99") -> dict[str, Capacity]:
    """Per policy with Poisson levels: the most it served within the objective at a load where the objective held
    at that load and at every lower one measured, and the lowest load where it first missed (a level with no
    measured percentile, no request ok, misses). With intervals (`with_intervals`: `p99_low`, `p99_high`), the
    claim is unsure where a level it rests on has an interval that reaches across the objective, or none."""
    if percentile not in PERCENTILES:
        raise ValueError(f"percentile must be one of {', '.join(PERCENTILES)}, got {percentile!r}")
    if not objective_s > 0:
        raise ValueError(f"objective must be > 0 seconds, got {objective_s}")
    rows = _poisson(_rows(levels))
    out = {}
    for policy in _policies(rows):
        mine = [r for r in rows if _who(r) == policy]  # by offered load
        value = [_num(r.get(f"{percentile}_s")) for r in mine]
        k = next((i for i, v in enumerate(value) if v is None or v > objective_s), len(mine))
        held, miss = mine[:k], (mine[k] if k < len(mine) else None)
        best = max((r for r in held if _num(r.get("throughput_rps")) is not None),
                   key=lambda r: _num(r["throughput_rps"]), default=None)
        unsure = next((r for r in held + ([miss] if miss else []) if _straddles(r, percentile, objective_s)), None)
        out[policy] = Capacity(
            policy=policy, objective_s=float(objective_s), percentile=percentile, levels=len(mine),
            served_rps=_num(best["throughput_rps"]) if best else None,
            served_offered_rps=_num(best["offered_rps"]) if best else None,
            first_miss_rps=_num(miss["offered_rps"]) if miss else None,
            first_miss_factor=own_factor(miss) if miss else None,
            unsure_rps=_num(unsure["offered_rps"]) if unsure else None,
            too_few=bool(unsure) and _num(unsure.get(f"{percentile}_low")) is None,
            needed=stats.quantile_needed(QUANTILE[percentile]) if unsure else None)
    return out


def _straddles(r: dict, percentile: str, objective_s: float) -> bool:
    """With intervals given: the level's interval of the percentile does not exist or reaches across the
    objective (held or missed, it cannot be told at 95%). Without intervals: False (nothing to say)."""
    if f"{percentile}_high" not in r:
        return False
    low, high = _num(r.get(f"{percentile}_low")), _num(r.get(f"{percentile}_high"))
    return low is None or high is None or low <= objective_s < high


# Each percentile's interval, from the level's own requests.

def with_intervals(levels: pd.DataFrame, latencies: pd.DataFrame) -> pd.DataFrame:
    """The levels with each percentile's 95% order-statistic interval (stats.quantile_interval) from the
    latencies of their ok requests (`latencies`: level_id, latencies, as Warehouse.load_latencies gives):
    `p50_low`, `p50_high`, ... NaN where the level's requests are too few (`p99_needed` says how many)."""
    out = levels.copy()
    by_level = dict(zip(latencies.level_id, latencies.latencies)) if len(latencies) else {}
    for name, q in QUANTILE.items():
        found = [stats.quantile_interval(by_level.get(level_id, []), q) for level_id in out.level_id]
        out[f"{name}_low"] = [i.low for i in found]
        out[f"{name}_high"] = [i.high for i in found]
        out[f"{name}_needed"] = stats.quantile_needed(q)
    return out


@dataclass(frozen=True)
class Tail:
    """How many levels had requests enough for an interval of their p99."""

    levels: int          # levels with a p99
    too_few: int         # of them, with fewer requests than `needed`
    most: int            # the most requests ok of those too few
    needed: int


def tail(levels) -> Tail | None:
    """From `with_intervals` rows: the levels whose p99 has no interval (too few requests ok). None when every
    level's has one, or no level has a p99."""
    rows = [r for r in _rows(levels) if _num(r.get("p99_s")) is not None]
    short = [r for r in rows if _num(r.get("p99_low")) is None]
    if not short:
        return None
    return Tail(len(rows), len(short), int(max(_num(r.get("requests_ok")) or 0 for r in short)),
                stats.quantile_needed(0.99))


# Each policy's own capacity, from the cost calibrated at the start of its run.

def own_capacity(r: dict) -> float | None:
    """Requests/s the level's own policy sustains on its calibrated cost, times its servers: fifo 1 / job(1);
    batch max_batch / job(max_batch); stream in steady state with max_batch rows, where max_batch / steps
    requests leave per step on average and each step costs step(max_batch) plus their decode. A level measured
    at a client: the capacity calibrated from the server's answers (capacity_rps). None without a cost."""
    if _endpoint(r) is not None:
        return _num(r.get("capacity_rps"))
    cost = {k: _num(r.get(k)) for k in ("job_fixed_s", "job_marginal_s", "step_fixed_s", "step_marginal_s",
                                         "finish_fixed_s", "finish_marginal_s", "max_batch", "steps")}
    policy, b = r.get("policy"), cost["max_batch"]
    if policy == "fifo" and None not in (cost["job_fixed_s"], cost["job_marginal_s"]):
        one = 1 / (cost["job_fixed_s"] + cost["job_marginal_s"])
    elif policy == "batch" and None not in (cost["job_fixed_s"], cost["job_marginal_s"], b):
        one = b / (cost["job_fixed_s"] + cost["job_marginal_s"] * b)
    elif policy == "stream" and None not in cost.values():
        leaving = b / cost["steps"]                     # requests leaving per step, on average
        at_once = max(1.0, leaving)                     # decoded together at one boundary
        decode = leaving / at_once * (cost["finish_fixed_s"] + cost["finish_marginal_s"] * at_once)
        one = leaving / (cost["step_fixed_s"] + cost["step_marginal_s"] * b + decode)
    else:
        return None
    return one * servers_of(r) if one > 0 else None


def own_factor(r: dict) -> float | None:
    """The level's offered load over its own policy's capacity (own_capacity); None where either is unknown."""
    offered, own = _num(r.get("offered_rps")), own_capacity(r)
    return offered / own if offered is not None and own else None


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
    """One policy: bursts of n requests at once, until the last finished, against one request sent alone; the
    medians over the repeated bursts of each size, and the 95% interval of their ratio."""

    policy: str    # the policy, or '2 servers · fifo' for several servers
    n: int
    one_s: float   # median latency of the one request sent alone
    all_s: float   # median last finish of the bursts of n (all arrived at 0: their longest latency)
    ratio_low: float = math.nan   # the 95% interval of all_s / one_s (stats.ratio_interval); NaN: too few bursts
    ratio_high: float = math.nan
    bursts: int = 1               # bursts of the fewer size
    needed: int = 6               # bursts of each size a 95% interval needs
    waited_s: float | None = None  # batch: the lone request waited the batcher's whole delay (this long)

    @property
    def ratio(self) -> float:
        return self.all_s / self.one_s

    @property
    def too_few(self) -> bool:
        return math.isnan(self.ratio_low)


def burst(levels) -> list[Burst]:
    """Per policy with bursts of 1 and of N > 1 (the largest) whose every request finished ok: the median time
    of the bursts of N over that of the lone requests, with its interval, by ratio (smallest first). Under the
    batch policy, when the lone requests waited (median) at least 90% of the batcher's delay and that delay is a
    quarter or more of their time, it is named: the delay, not the work, set that part of the one request's time."""
    rows = [r for r in _rows(levels) if r.get("arrival") == "burst" and _num(r.get("clients")) is not None]
    out = []
    for policy in _policies(rows):
        mine = [r for r in rows if _who(r) == policy and _num(r.get("max_s")) is not None
                and _num(r.get("requests_ok")) == _num(r.get("requests"))]
        ones = [r for r in mine if _num(r["clients"]) == 1 and _num(r["max_s"]) > 0]
        many = [r for r in mine if _num(r["clients"]) > 1]
        if not ones or not many:
            continue
        n = max(_num(r["clients"]) for r in many)
        tops = [r for r in many if _num(r["clients"]) == n]
        interval = stats.ratio_interval([_num(r["max_s"]) for r in tops], [_num(r["max_s"]) for r in ones])
        one_s = statistics.median(_num(r["max_s"]) for r in ones)
        waits = [w for w in (_num(r.get("mean_wait_s")) for r in ones) if w is not None]
        delay = _num(ones[0].get("max_delay_s"))
        waited = (delay if ones[0].get("policy") == "batch" and delay and delay >= 0.25 * one_s and waits
                  and statistics.median(waits) >= 0.9 * delay else None)
        out.append(Burst(policy, int(n), one_s, statistics.median(_num(r["max_s"]) for r in tops),
                         interval.low, interval.high, interval.n, interval.needed, waited))
    return sorted(out, key=lambda b: (b.ratio, b.policy))


# 3. The simulation against the measurement.

@dataclass(frozen=True)
class Gap:
    """One level: the predicted and measured p50 and p99, and (predicted - measured) / measured of each."""

    level_id: str
    policy: str                   # the policy, or '2 servers · fifo' for several servers
    arrival: str
    offered_rps: float | None
    own_factor: float | None      # offered over the policy's own capacity (own_capacity)
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
        out.append(Gap(str(r.get("level_id")), _who(r), str(r.get("arrival")), _num(r.get("offered_rps")),
                       own_factor(r), None if clients is None else int(clients),
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
                    rows.append({"policy": _who(r), "offered_rps": _num(r["offered_rps"]),
                                 "own_factor": own_factor(r), "percentile": q, "source": source,
                                 "latency_s": value})
    return pd.DataFrame(rows, columns=["policy", "offered_rps", "own_factor", "percentile", "source", "latency_s"])


def throughput_curves(levels) -> pd.DataFrame:
    """Poisson levels: throughput against p99 latency, measured and predicted, one row per point."""
    rows = []
    for r in _poisson(_rows(levels)):
        for source, p99, rps in (("measured", "p99_s", "throughput_rps"),
                                 ("predicted", "predicted_p99_s", "predicted_rps")):
            if _num(r.get(p99)) is not None and _num(r.get(rps)) is not None:
                rows.append({"policy": _who(r), "offered_rps": _num(r["offered_rps"]), "source": source,
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


# 5. One server with a batcher against N servers without one, at the same offered loads.

BATCHERS = ("batch", "stream")


def has_servers(levels) -> bool:
    """Whether any level was served by more than one server."""
    return any(servers_of(r) > 1 for r in _rows(levels))


def _complete(r: dict) -> bool:
    """Every request of the level finished ok, and it has a p50 and p99 to compare."""
    return (_num(r.get("requests")) is not None and _num(r.get("requests_ok")) == _num(r.get("requests"))
            and _num(r.get("p50_s")) is not None and _num(r.get("p99_s")) is not None)


def _versus(r: dict) -> bool:
    """A level of the comparison: one server with a batcher, or several servers without one (fifo)."""
    n = servers_of(r)
    return _endpoint(r) is None and ((n == 1 and r["policy"] in BATCHERS) or (n > 1 and r["policy"] == "fifo"))


@dataclass(frozen=True)
class Versus:
    """At one offered load: one server with a batcher (`batcher`: batch or stream) against `servers` servers
    without one (fifo behind the round-robin router); both levels had every request finish ok."""

    offered_rps: float
    batcher: str
    servers: int
    one_p50_s: float
    one_p99_s: float
    one_rps: float | None
    many_p50_s: float
    many_p99_s: float
    many_rps: float | None

    @property
    def one(self) -> str:
        return setup(self.batcher, 1, always=True)

    @property
    def many(self) -> str:
        return setup("fifo", self.servers)


def servers_versus(levels) -> list[Versus]:
    """Per batcher with one server, per N > 1 with fifo, per offered load both served with every request ok
    (Poisson levels; the same absolute rate, to a part in a million): the two levels' p50, p99, throughput. By
    batcher, N, offered load."""
    rows = [r for r in _poisson(_rows(levels)) if _versus(r) and _complete(r)]
    ones = [r for r in rows if servers_of(r) == 1]
    manys = [r for r in rows if servers_of(r) > 1]
    out = []
    for one in ones:
        for many in manys:
            if math.isclose(_num(one["offered_rps"]), _num(many["offered_rps"]), rel_tol=1e-6):
                out.append(Versus(_num(one["offered_rps"]), str(one["policy"]), servers_of(many),
                                  _num(one["p50_s"]), _num(one["p99_s"]), _num(one.get("throughput_rps")),
                                  _num(many["p50_s"]), _num(many["p99_s"]), _num(many.get("throughput_rps"))))
    return sorted(out, key=lambda v: (v.batcher, v.servers, v.offered_rps))


@dataclass(frozen=True)
class SharedCores:
    """N servers that ran on the CPU of the one machine the single server ran on, with no more torch threads
    between them than the single server had: they split its cores."""

    servers: int
    threads: int         # torch threads of each of the N servers (the most of any of their levels)
    one_threads: int     # torch threads of the single server (the fewest of any of its levels)
    host: str


def shared_cores(levels) -> list[SharedCores]:
    """Per N > 1 whose every level ran on a CPU on one host, the host of every one-server level, and
    N x its threads <= the one server's threads: what they shared. None of this when either side's threads or
    host are unknown."""
    rows = _rows(levels)
    one = [r for r in rows if servers_of(r) == 1]
    out = []
    for n in sorted({servers_of(r) for r in rows} - {1}):
        mine = [r for r in rows if servers_of(r) == n]
        hosts = {str(r.get("host")) for r in mine + one}
        threads = [_num(r.get("threads")) for r in mine]
        one_threads = [_num(r.get("threads")) for r in one]
        known = one and None not in threads + one_threads and None not in [r.get("host") for r in mine + one]
        if not known or len(hosts) != 1 or "," in next(iter(hosts)) or any(r.get("device") != "cpu" for r in mine + one):
            continue
        each, single = int(max(threads)), int(min(one_threads))
        if n * each <= single:
            out.append(SharedCores(n, each, single, next(iter(hosts))))
    return out


def versus_curves(levels) -> pd.DataFrame:
    """Poisson levels of the comparison (one server with a batcher; N > 1 servers with fifo): p50 and p99 and
    throughput against offered load, one row per point; `setup` names them ('1 server · batch',
    '2 servers · fifo'), `metric` is p50, p99 or throughput, `value` in s or requests/s."""
    out = []
    for r in _poisson(_rows(levels)):
        if not _versus(r):
            continue
        name = setup(str(r["policy"]), servers_of(r), always=True)
        for metric, column in (("p50", "p50_s"), ("p99", "p99_s"), ("throughput", "throughput_rps")):
            value = _num(r.get(column))
            if value is not None:
                out.append({"setup": name, "servers": servers_of(r), "policy": r["policy"],
                            "offered_rps": _num(r["offered_rps"]), "metric": metric, "value": value})
    return pd.DataFrame(out, columns=["setup", "servers", "policy", "offered_rps", "metric", "value"])


def with_setup(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (levels or requests, with policy, servers and endpoint) with `setup` (see `setup`)."""
    out = frame.copy()
    out["setup"] = [_who(r) for r in _rows(frame)] if len(frame) else pd.Series(dtype=str)
    return out
