"""The Throughput page: names of its figures, the model table, intervals, the published figures."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ..analysis import UNCERTAIN
from ..costmodel import BIC_MARGIN, CostModel, Estimate, NoModel
from . import words


def _bases(base_batches: Iterable[int]) -> list[int]:
    return sorted({int(b) for b in base_batches})


def speedup_title(base_batches: Iterable[int]) -> str:
    """'Speed-up over batch N' when every run's smallest measured batch is N, else over the smallest batch."""
    bases = _bases(base_batches)
    return f"Speed-up over batch {bases[0]}" if len(bases) == 1 else "Speed-up over the smallest batch"


def speedup_axis(base_batches: Iterable[int]) -> str:
    bases = _bases(base_batches)
    return f"x batch {bases[0]}" if len(bases) == 1 else "x smallest batch"


def efficiency_axis(base_batches: Iterable[int]) -> str:
    """Efficiency = speed-up / (batch / smallest batch); with batch 1 as the smallest, speed-up / batch."""
    bases = _bases(base_batches)
    if bases == [1]:
        return "speed-up / batch"
    return f"speed-up / (batch / {bases[0]})" if len(bases) == 1 else "speed-up / (batch / smallest batch)"


MODEL_COLUMNS = ["run", "model", "fixed s", "per image s", "knee", "after knee s", "fixed share at base",
                 "saturates", "a bend seen up to", "bump"]


def _cell(e: Estimate | None) -> str:
    return "" if e is None else words.est(e, "")


def model_table(models: dict[str, CostModel | NoModel], labels: dict[str, str]) -> pd.DataFrame:
    """One row per run: the chosen model and its figures with 95% intervals (or why there is none)."""
    rows = []
    for run_id, m in models.items():
        if isinstance(m, NoModel):
            rows.append([labels[run_id], {"no_data": "no measured jobs", "one_size": "one batch size",
                                          "too_noisy": "too noisy to fit"}[m.reason], "", "", "", "", "", "", "",
                         ""])
            continue
        share = f"{words.share(m.fixed_share)} at batch {m.base_batch}"
        seen = "no bend can be seen" if m.undetectable_past == m.base_batch else f"batch {m.undetectable_past}"
        bumped = "" if m.bump is None else f"batch {m.bump.batch} > batch {m.bump.slower_than} ({m.bump.ratio:.2f}x)"
        rows.append([labels[run_id], m.kind, _cell(m.fixed_s), _cell(m.marginal_s), _cell(m.knee),
                     _cell(m.marginal_after_s), share, "yes" if m.saturates else "no", seen, bumped])
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def interval_text(low_s: float, high_s: float) -> str:
    """A median's interval for a table cell: '0.101–0.109 s' ('' without one: `certainty` says why)."""
    if pd.isna(low_s) or pd.isna(high_s):
        return ""
    return f"{low_s:.3g}–{high_s:.3g} s"


def certainty(half_width: float, jobs: int | None = None, needed: int | None = None) -> str:
    """'±2.1%' for a median within the bound, 'uncertain: ±7.4% (wider than ±5%)' beyond it, and without an
    interval, given the jobs and the jobs needed: 'uncertain: 3 repeats: too few for a 95% interval (6 needed)'."""
    if pd.isna(half_width):
        if jobs is not None and needed is not None and not pd.isna(jobs) and jobs < needed:
            return f"uncertain: {words.too_few(int(jobs), int(needed))}"
        return ""
    if half_width > UNCERTAIN:
        return f"uncertain: ±{half_width:.1%} (wider than ±{UNCERTAIN:.0%})"
    return f"±{half_width:.1%}"


def model_caption() -> str:
    return ("Each run's job times are fitted two ways, a straight line and a hinge (one slope up to a knee, "
            "another after it; the knee may lie between measured batches). A knee is shown only on strong "
            f"evidence: the hinge's information criterion (BIC) at least {BIC_MARGIN:g} below the line's, every "
            "batch size measured at least twice, and no batch slower than a larger one beyond the noise (that is a "
            "bump, named in its column). A bend past the second largest batch cannot be seen ('a bend seen up "
            "to'). Brackets: 95% intervals, by a bootstrap that redoes the line-or-hinge choice in each redraw; "
            "the knee's interval from the fit's profile. A run saturates when the slope after the knee is above the slope "
            "before it beyond both intervals.")


def published_caption() -> str:
    return ("Published figures beside yours, per image-step (time / (images x steps)) so step counts compare; "
            "speed-up is over the same setting's batch 1. Different models, sizes and devices: a sanity check "
            "of the order of magnitude, not a ranking.")


def stream_latency_caption(cite: words.Cite) -> str:
    """What the stream latency chart shows (a description: it quotes no figure and claims no outcome)."""
    return (f"In Stream Batch ({cite('streamdiffusion')}) a request enters one UNet call after the previous one "
            "and leaves after its last step; each point is a request's time from entering to leaving, the "
            "median over the run's measured jobs.")
