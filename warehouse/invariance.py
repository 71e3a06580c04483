"""Did batching change my images? The image_checks rows summed up per kind of comparison.

Kinds (the generator's generator/measure/invariance.py writes the rows):
- batching: an image drawn at batch B > 1 against the same seed at batch 1 of the same run;
- repeat: batch 1 run again against its first run (the device's own repeatability: when it
  differs, a difference under batching may be the device's noise, not the batch's);
- mode: the same seed and batch size in runs that differ only in their mode (stream, static,
  sequential);
- vae_slicing: the same, in runs that differ only in their VAE slicing.

Pure functions on plain data, no SQL: the rows come from Warehouse.image_checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

KINDS = ("batching", "repeat", "mode", "vae_slicing")


@dataclass(frozen=True)
class Worst:
    """The comparison with the largest difference: where it is and how large."""
    max_abs_diff: int
    psnr_db: float | None
    seed: int
    batch_size: int
    label: str          # the run of the image
    mode: str
    ref_mode: str
    ref_batch_size: int
    ref_vae_slicing: bool
    vae_slicing: bool


@dataclass(frozen=True)
class Invariance:
    """One kind of comparison over a sweep: how many images, how many identical, the largest difference."""
    kind: str
    compared: int
    identical: int
    batch_sizes: tuple[int, ...]
    modes: tuple[str, ...]      # the modes on either side
    worst: Worst

    @property
    def all_identical(self) -> bool:
        return self.identical == self.compared


def kind_of(rows: pd.DataFrame) -> pd.Series:
    """The kind of each image_checks row (see the module docstring)."""
    batch_1 = rows.against == "batch_1"
    return pd.Series(
        [("batching" if b > 1 else "repeat") if one else against
         for one, b, against in zip(batch_1, rows.batch_size, rows.against)], index=rows.index, dtype=object)


def invariance(rows: pd.DataFrame) -> dict[str, Invariance]:
    """Per kind with rows: the summary of its comparisons."""
    out = {}
    if rows.empty:
        return out
    kinds = kind_of(rows)
    for kind in KINDS:
        g = rows[kinds == kind]
        if g.empty:
            continue
        w = g.sort_values(["max_abs_diff", "mean_abs_diff"], ascending=False).iloc[0]
        worst = Worst(int(w.max_abs_diff), None if pd.isna(w.psnr_db) else float(w.psnr_db), int(w.seed),
                      int(w.batch_size), str(w.label), str(w["mode"]), str(w.ref_mode), int(w.ref_batch_size),
                      bool(w.ref_vae_slicing), bool(w.vae_slicing))
        out[kind] = Invariance(
            kind=kind, compared=len(g), identical=int((g.max_abs_diff == 0).sum()),
            batch_sizes=tuple(sorted({int(b) for b in g.batch_size})),
            modes=tuple(sorted({str(m) for m in g["mode"]} | {str(m) for m in g.ref_mode})), worst=worst)
    return out


def pairs(rows: pd.DataFrame, job_id: str) -> pd.DataFrame:
    """A job's saved images beside the saved picture of the same seed they were held against, one row per
    comparison that has both pictures (batch 1 first, then the other modes)."""
    mine = rows[(rows.job_id == job_id) & rows.path.notna() & rows.ref_path.notna()].copy()
    if mine.empty:
        return mine
    mine["kind"] = kind_of(mine)
    order = {k: i for i, k in enumerate(KINDS)}
    return mine.sort_values(["index", "kind"], key=lambda c: c.map(order) if c.name == "kind" else c)
