"""More images at once, two ways: a bigger batch on one worker, or more workers (rows of the view replica_throughput).

A replica sweep (`python -m generator sweep --ray local --replicas 1,2`) runs every run setting on N workers at
once, for each level N, at each batch size B. k images are then in flight at once in three ways:
- a bigger batch: one worker (N = 1) at batch k;
- more workers: k workers (N = k) at batch 1;
- both: N workers at batch B, k = N·B (every measured combination with N > 1 and B > 1).
For each: images/s (the sum of the workers' own rates, as the view defines it), the speed-up over one worker at
batch 1, and the scaling efficiency, speed-up / k (1: each extra image in flight as fast as the first).

Where the runs ran: how much hardware stood behind each level (hosts, GPUs, a CPU's threads per worker), and
images/s by batch size side by side per host and device (`places`).

Pure functions on plain data, no SQL: the rows come from Warehouse.replica_throughput and Warehouse.throughput.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import stats

from .analysis import UNCERTAIN

# What makes two groups the same thing done on more workers: the columns of the view's run setting.
SETTING = ("model_id", "task", "mode", "height", "width", "cfg", "vae_slicing", "device", "device_name")
WAYS = ("bigger batch", "more workers", "both")
# Two ways are a tie when their images/s differ by less than this share (the bound beyond which one median is
# shown as uncertain), or when their ranges (`ways`: the 95% intervals, widened to the spread between workers)
# overlap.
TIE = UNCERTAIN

POINT_COLUMNS = ["setting", *SETTING, "way", "replicas", "batch_size", "k", "workers", "images_per_s", "low",
                 "high", "speedup", "efficiency", "hosts", "devices", "threads", "cpu_count", "groups"]


def ran_alone(runs: pd.DataFrame) -> pd.Series:
    """Which runs ran alone: every run but a replica run of a level with more than one worker. Those were measured
    while their sibling workers competed for the same host or GPU, so a run's own curve mixes that contention with
    batching; the replica figures (`ways`) sum the workers instead. One worker alone (N = 1) ran like any run."""
    return runs.replicas.isna() | (runs.replicas <= 1)


def setting_label(row) -> str:
    """'txt2img 64x64 static cfg vae slicing': a run setting without its run id or worker."""
    return (f"{row['task']} {int(row['height'])}x{int(row['width'])} {row['mode']}"
            + (" cfg" if _true(row.get("cfg")) else "") + (" vae slicing" if _true(row.get("vae_slicing")) else ""))


def _true(x) -> bool:
    return x is not None and not pd.isna(x) and bool(x)


def _way(replicas: int, batch: int) -> list[str]:
    """The ways a point belongs to: one worker at batch 1 starts both the bigger-batch and the more-workers line."""
    ways = []
    if replicas == 1:
        ways.append("bigger batch")
    if batch == 1:
        ways.append("more workers")
    return ways or ["both"]


def _intervals(jobs: pd.DataFrame | None) -> dict:
    """(replica_group, batch_size) -> (low, high): the sum over the group's workers of the 95% order-statistic
    interval of each worker's images/s (B / its median job time: stats.median_interval). A group in which some
    worker has too few jobs for an interval has none (its range is then the workers' spread alone)."""
    out, without = {}, set()
    if jobs is None or jobs.empty:
        return out
    for (group, batch, _), g in jobs.groupby(["replica_group", "batch_size", "run_id"], sort=False):
        r = stats.median_interval(g.wall_s)
        if r.too_few:
            without.add((group, batch))
            continue
        low, high = out.get((group, batch), (0.0, 0.0))
        out[(group, batch)] = (low + batch / r.high, high + batch / r.low)
    return {key: value for key, value in out.items() if key not in without}


def ways(rows: pd.DataFrame, jobs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per way and measured point (N workers at batch B, every worker measured) of each run setting:
    images/s (the group's aggregate); low and high, the range it could take: from N x the slowest worker's
    images/s to N x the fastest's (where the sum would lie had every worker run as one of them), widened, given
    the measured jobs (Warehouse.replica_jobs), to the sum of each worker's 95% interval; speed-up over one worker
    at batch 1 of the same setting (NaN without it) and efficiency = speed-up / k. A group in which some worker
    has no measured job at B is left out: it is not N workers' throughput. One worker at batch 1 appears twice,
    as bigger batch and more workers. A level run more than once (--replicas 1,2,1,2) is one point: the median
    of its groups (`groups` of them), its range over all of them."""
    if rows.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    intervals = _intervals(jobs)
    rows = rows[rows.workers == rows.replicas].copy()
    rows["setting"] = [setting_label(r) for r in rows.to_dict("records")]
    out = []
    for _, g in rows.groupby(["setting", *SETTING[:-1]], dropna=False, sort=True):
        points = _pooled([_group_point(r, intervals) for r in g.to_dict("records")])
        base = next((p["images_per_s"] for p in points if p["replicas"] == 1 and p["batch_size"] == 1), float("nan"))
        for p in points:
            n, b = p["replicas"], p["batch_size"]
            for way in _way(n, b):
                out.append({**p, "way": way, "k": n * b, "speedup": p["images_per_s"] / base,
                            "efficiency": p["images_per_s"] / base / (n * b)})
    return pd.DataFrame(out, columns=POINT_COLUMNS)


def _group_point(r: dict, intervals: dict) -> dict:
    """One group (N workers at batch B): its aggregate images/s and the range it could take."""
    n, b = int(r["replicas"]), int(r["batch_size"])
    low, high = n * float(r["min_worker_images_per_s"]), n * float(r["max_worker_images_per_s"])
    ci_low, ci_high = intervals.get((r["replica_group"], b), (low, high))
    return {**{c: r[c] for c in ("setting", *SETTING)}, "replicas": n, "batch_size": b, "workers": int(r["workers"]),
            "images_per_s": float(r["aggregate_images_per_s"]), "low": min(low, ci_low), "high": max(high, ci_high),
            "hosts": r["hosts"], "devices": r["devices"], "threads": r["threads"], "cpu_count": r["cpu_count"]}


def _pooled(points: list[dict]) -> list[dict]:
    """A level run more than once in a sweep (--replicas 1,2,1,2: the levels alternate): one point per (N, B),
    the median of its groups' images/s, its range from the lowest low to the highest high."""
    by_key: dict = {}
    for p in points:
        by_key.setdefault((p["replicas"], p["batch_size"]), []).append(p)
    out = []
    for key in sorted(by_key):
        group = by_key[key]
        out.append({**group[0], "images_per_s": float(pd.Series([p["images_per_s"] for p in group]).median()),
                    "low": min(p["low"] for p in group), "high": max(p["high"] for p in group),
                    "groups": len(group)})
    return out


@dataclass(frozen=True)
class Point:
    """N workers at batch B: images/s, the range its workers spread over, speed-up and efficiency."""
    replicas: int
    batch_size: int
    images_per_s: float
    low: float
    high: float
    speedup: float
    efficiency: float


@dataclass(frozen=True)
class Comparison:
    """At the largest k both ways reached in one run setting: a batch of k on one worker against k workers at
    batch 1. winner: the way ahead by more than TIE and beyond the workers' spread, or None (a tie)."""
    setting: str
    k: int
    batch: Point
    workers: Point
    base: Point         # one worker at batch 1
    winner: str | None
    ratio: float        # the larger images/s over the smaller


def _point(row) -> Point:
    return Point(replicas=int(row.replicas), batch_size=int(row.batch_size), images_per_s=float(row.images_per_s),
                 low=float(row.low), high=float(row.high), speedup=float(row.speedup),
                 efficiency=float(row.efficiency))


def beyond_linear(c: Comparison) -> bool:
    """k workers gave more than k times one worker's images/s, beyond both ranges: their lowest figure above k
    times one worker's highest."""
    return c.workers.low > c.k * c.base.high


def ahead(a: Point, b: Point, tie: float = TIE) -> bool:
    """a gave more images/s than b: by more than `tie` of b's, and a's range lies wholly above b's."""
    return a.images_per_s > b.images_per_s * (1 + tie) and a.low > b.high


def compare(points: pd.DataFrame, tie: float = TIE) -> list[Comparison]:
    """From `ways` rows: per run setting with one worker at batch 1 and both ways measured at some k > 1, the
    comparison at the largest such k."""
    out = []
    for (setting, *_), g in points.groupby(["setting", *SETTING[:-1]], dropna=False, sort=True):
        if g.speedup.isna().all():
            continue
        batch = g[(g.way == "bigger batch") & (g.k > 1)].set_index("k")
        more = g[(g.way == "more workers") & (g.k > 1)].set_index("k")
        common = sorted(set(batch.index) & set(more.index))
        if not common:
            continue
        k = common[-1]
        b, w = _point(batch.loc[k]), _point(more.loc[k])
        one = g[(g.way == "more workers") & (g.k == 1)]   # one worker at batch 1 (speed-ups are over it)
        if one.empty:
            continue
        one = _point(one.iloc[0])
        winner = "bigger batch" if ahead(b, w, tie) else "more workers" if ahead(w, b, tie) else None
        out.append(Comparison(setting=str(setting), k=int(k), batch=b, workers=w, base=one, winner=winner,
                              ratio=max(b.images_per_s, w.images_per_s) / min(b.images_per_s, w.images_per_s)))
    return out


@dataclass(frozen=True)
class Level:
    """The hardware behind one level of a replica sweep (over its groups and batch sizes)."""
    replicas: int
    device: str               # cpu | cuda | mps
    hosts: int
    devices: int              # GPUs by UUID, else hosts
    threads: int | None       # torch threads per worker (the fewest)
    cpu_count: int | None     # logical CPUs of a host (the most)

    @property
    def shared(self) -> bool:
        """More workers than hardware: on a CPU fewer hosts than workers (they split its cores), on a GPU fewer
        GPUs than workers."""
        return (self.hosts if self.device == "cpu" else self.devices) < self.replicas


def _int(x) -> int | None:
    return None if x is None or pd.isna(x) else int(x)


def levels(rows: pd.DataFrame) -> list[Level]:
    """One Level per device kind and level N, from replica_throughput rows, fewest workers first."""
    out = []
    if rows.empty:
        return out
    for (device, n), g in rows.groupby(["device", "replicas"], sort=True):
        out.append(Level(replicas=int(n), device=str(device), hosts=int(g.hosts.max()), devices=int(g.devices.max()),
                         threads=_int(g.threads.min()), cpu_count=_int(g.cpu_count.max())))
    return out


def alone(all_levels: list[Level], level: Level) -> Level | None:
    """The level of one worker on the same device kind, to hold a shared level against."""
    return next((lv for lv in all_levels if lv.device == level.device and lv.replicas == 1), None)


def places(tp: pd.DataFrame) -> pd.DataFrame | None:
    """From Warehouse.throughput rows: images/s per run setting (with its workers, in a replica sweep) and batch
    size, one column per place a run ran (host · device); the median over the runs of a cell (the workers of one
    level on one place). None when every run ran in one place."""
    if tp.empty:
        return None
    place = tp.host.fillna("unknown host").astype(str) + " · " + tp.device_label.astype(str)
    if place.nunique() < 2:
        return None
    setting = [setting_label(r) + ("" if pd.isna(r["replicas"]) else
                                   f", {int(r['replicas'])} worker{'s' if r['replicas'] != 1 else ''}")
               for r in tp.to_dict("records")]
    table = (tp.assign(place=place, setting=setting)
             .pivot_table(index=["setting", "batch_size"], columns="place", values="images_per_s", aggfunc="median"))
    table.columns.name = None
    return table.reset_index()
