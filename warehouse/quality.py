"""What the pictures show, against what they cost: fewer steps or a bigger batch (pure functions, no I/O).

From Warehouse.picture_reads (per run and batch size: pictures read against a caption, how many showed the asked
colours, the median time per image) and Warehouse.image_checks (same_shown: a picture against the same seed at
batch 1). Every share has its 95% Clopper-Pearson interval (stats.proportion_interval), which holds the true
share at least 95% of the time at any count of pictures.

- `tradeoff`: two series of points, time per image against the share of pictures showing the asked colours:
  `steps` (runs that differ only in their step count, each at the largest batch size they all kept pictures
  of, so every point rests on the same seeds) and `batch size` (each batch size of the run among them that
  kept pictures at the most batch sizes).
- `steps_effect`: the fewest and the most steps side by side, and whether their intervals are apart.
- `batching_shown`: how many pictures drawn at a batch above 1 show what the same seed shows at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import stats

# What makes two runs the same but for their steps.
SETTING = ["model_id", "task", "height", "width", "mode", "cfg", "guidance_scale", "vae_slicing"]
COLUMNS = ["series", "run_id", "label", "steps", "batch_size", "s_per_image", "pictures", "colours_right", "share",
           "low", "high", "setting"]


def _with_shares(rows: pd.DataFrame) -> pd.DataFrame:
    intervals = [stats.proportion_interval(int(k), int(n)) for k, n in zip(rows.colours_right, rows.pictures)]
    return rows.assign(share=[i.value for i in intervals], low=[i.low for i in intervals],
                       high=[i.high for i in intervals])


def tradeoff(reads: pd.DataFrame) -> pd.DataFrame:
    """The points of both series for every setting with more than one step count (COLUMNS; `setting` names
    the setting); empty when no sweep ran more than one step count."""
    if reads.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for _, group in reads.groupby(SETTING, dropna=False):
        if group.steps.nunique() < 2:
            continue
        # 1. Steps: at the largest batch size every step count kept pictures of.
        common = set.intersection(*(set(g.batch_size) for _, g in group.groupby("steps")))
        if not common:
            continue
        at = max(common)
        steps = group[group.batch_size == at].assign(series="steps")
        # 2. Batch size: every batch size of the run that kept pictures at the most batch sizes (of those, the
        #    first with the most steps).
        kept = group.groupby("run_id").agg(sizes=("batch_size", "nunique"), steps=("steps", "first"))
        best = kept.sort_values(["sizes", "steps"], ascending=False, kind="stable").index[0]
        batches = group[group.run_id == best].assign(series="batch size")
        first = group.iloc[0]
        setting = f"{first['task']} {first['height']}x{first['width']} {first['mode']}" + (
            f" cfg {first['guidance_scale']:g}" if bool(first["cfg"]) else "")
        out.append(pd.concat([steps, batches]).assign(setting=setting))
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    return _with_shares(pd.concat(out, ignore_index=True))[COLUMNS]


@dataclass(frozen=True)
class StepsEffect:
    """The fewest and the most steps of one setting, at one batch size: pictures right and time per image."""

    setting: str
    batch_size: int
    few: int
    many: int
    few_right: stats.Interval
    many_right: stats.Interval
    few_s: float          # median seconds per image
    many_s: float
    few_counts: tuple[int, int]   # (right, pictures)
    many_counts: tuple[int, int]

    @property
    def apart(self) -> bool:
        """The two shares' 95% intervals do not overlap: a difference the pictures can tell."""
        return self.few_right.high < self.many_right.low or self.many_right.high < self.few_right.low


def steps_effect(points: pd.DataFrame) -> list[StepsEffect]:
    """For each setting of `tradeoff`'s steps series: the fewest steps against the most."""
    found = []
    for setting, group in points[points.series == "steps"].groupby("setting"):
        group = group.sort_values("steps")
        few, many = group.iloc[0], group.iloc[-1]
        found.append(StepsEffect(
            str(setting), int(few.batch_size), int(few.steps), int(many.steps),
            stats.proportion_interval(int(few.colours_right), int(few.pictures)),
            stats.proportion_interval(int(many.colours_right), int(many.pictures)),
            float(few.s_per_image), float(many.s_per_image),
            (int(few.colours_right), int(few.pictures)), (int(many.colours_right), int(many.pictures))))
    return found


@dataclass(frozen=True)
class BatchingShown:
    """Pictures drawn at batch sizes above 1 held against the same seed at batch 1: how many show the same."""

    same: int
    compared: int
    share: stats.Interval
    batch_sizes: tuple[int, ...]


def batching_shown(checks: pd.DataFrame) -> BatchingShown | None:
    """From image_checks rows against batch 1 with a reading on both sides (same_shown not NULL); None without.
    A picture is one (run, batch size, seed): every round of a run draws it again, and those drawings are not
    more pictures; it shows the same when every drawing of it does."""
    if checks.empty or "same_shown" not in checks:
        return None
    rows = checks[(checks.against == "batch_1") & checks.same_shown.notna() & (checks.batch_size > 1)]
    if rows.empty:
        return None
    each = rows.assign(same=rows.same_shown.astype(bool)).groupby(["run_id", "batch_size", "seed"]).same.all()
    same = int(each.sum())
    return BatchingShown(same, len(each), stats.proportion_interval(same, len(each)),
                         tuple(sorted(int(b) for b in rows.batch_size.unique())))
