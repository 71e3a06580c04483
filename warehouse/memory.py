"""What batch fits on my card? Peak memory per phase against batch size, as a line.

The memory a phase needs grows with the batch: the weights and the runtime are there at
any batch (m0), and every image adds its activations (m1 per image), so

    m(B) = m0 + m1 * B

fitted per phase by least squares on the median peak of each batch size. The phase whose
line first reaches a device's memory sets the limit there: the largest batch that fits is
floor((M - m0) / m1), the least over the phases. On a GPU the peak is CUDA's max
allocated; on a CPU the process's peak RSS (the runtime and the libraries in m0). Beyond
the batch sizes measured the line is an extrapolation, and a device needs some memory
for itself (the CUDA context, fragmentation), so the prediction is an upper bound.

Pure functions on plain data, no SQL: the numbers come from Warehouse.memory_by_phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GIB = 2 ** 30
# Common memory sizes of cards (and machines), GiB as their makers count them: 8 to 24 consumer cards,
# 48 (RTX 6000 Ada, L40S), 80 (A100 80GB, H100), 141 (H200).
COMMON_GIB = (8, 12, 16, 24, 48, 80, 141)
# The phases a pipeline call goes through, in order (timing.PHASE_ENDING_AT's phases).
PHASES = ("encode_prompt", "prepare", "denoise", "decode", "postprocess")
# A phase grows with the batch when its fitted growth over the batch sizes measured is at least this share of
# its base: below it, the slope is within what the base itself moves between jobs, and sets no limit.
GROWTH_MIN = 0.02
# Largest batches within this share of each other are a tie, which the earlier phase takes.
TIE = 0.02
# A largest batch more than this many times the largest batch measured is not named: too far to extrapolate.
FAR = 16


@dataclass(frozen=True)
class MemoryLine:
    """m(B) = base + per_image * B, fitted on batch sizes `sizes` (their median peaks)."""

    phase: str
    base: float            # m0, bytes
    per_image: float       # m1, bytes per image
    sizes: tuple[int, ...]
    worst_residual: float  # the largest |measured - fitted| over the sizes, as a share of the measured

    def at(self, batch: float) -> float:
        return self.base + self.per_image * batch

    @property
    def grows(self) -> bool:
        """The peak grows with the batch by more than GROWTH_MIN of the base over the sizes measured."""
        return self.per_image > 0 and self.per_image * (max(self.sizes) - min(self.sizes)) >= GROWTH_MIN * self.base

    def largest_batch(self, capacity: float) -> int | None:
        """The largest batch whose peak stays within `capacity` bytes: 0 when not even the base fits; None
        when the phase does not grow with the batch (`grows`: no limit from it)."""
        if self.base > capacity:
            return 0
        if not self.grows:
            return None
        # A hair of tolerance: a fitted line's floats land a batch that fits exactly at 10.999999.
        return int(math.floor((capacity - self.base) / self.per_image + 1e-9))


@dataclass(frozen=True)
class Limit:
    """At a capacity: the phase that sets the limit and the largest batch that fits (None: no phase grows)."""

    capacity: float
    phase: str | None
    largest_batch: int | None
    extrapolated: bool  # the batch lies beyond the largest batch size measured
    too_far: bool = False  # the batch lies more than FAR times beyond it: not named


def fit_line(phase: str, batch_sizes, peaks) -> MemoryLine | None:
    """The least-squares line through the median peak of each batch size; None with fewer than two sizes."""
    by_size: dict[int, list[float]] = {}
    for b, p in zip(batch_sizes, peaks):
        if p is not None and not (isinstance(p, float) and math.isnan(p)):
            by_size.setdefault(int(b), []).append(float(p))
    if len(by_size) < 2:
        return None
    sizes = sorted(by_size)
    x = np.array(sizes, dtype=float)
    y = np.array([float(np.median(by_size[b])) for b in sizes])
    per_image, base = np.polyfit(x, y, 1)
    residual = float(np.max(np.abs(y - (base + per_image * x)) / y))
    return MemoryLine(phase, float(base), float(per_image), tuple(sizes), residual)


def phase_lines(rows) -> dict[str, MemoryLine]:
    """One line per phase from rows with phase, batch_size and peak_mem_bytes (a DataFrame or dicts)."""
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    lines = {}
    for phase in PHASES + tuple(sorted({r["phase"] for r in records} - set(PHASES))):
        mine = [r for r in records if r["phase"] == phase]
        line = fit_line(phase, [r["batch_size"] for r in mine], [r["peak_mem_bytes"] for r in mine])
        if line is not None:
            lines[phase] = line
    return lines


def limit(lines: dict[str, MemoryLine], capacity: float) -> Limit:
    """The phase that runs out first at `capacity` bytes, and the largest batch that fits."""
    found = [(line.largest_batch(capacity), line.phase) for line in lines.values()]
    bounded = [(b, phase) for b, phase in found if b is not None]
    if not bounded:
        return Limit(capacity, None, None, False)
    # The phase that runs out first; within TIE of the least batch, the earliest phase: on a CPU a phase's peak
    # carries what earlier phases left allocated, so a later phase ties with the one that raised the peak.
    least = min(b for b, _ in bounded)
    order = {p: i for i, p in enumerate(PHASES)}
    batch, phase = min(((b, p) for b, p in bounded if b <= least * (1 + TIE)),
                       key=lambda bp: (order.get(bp[1], len(order)), bp[0]))
    largest_measured = max(max(line.sizes) for line in lines.values())
    return Limit(capacity, phase, batch, batch > largest_measured, batch > FAR * largest_measured)


def limits(lines: dict[str, MemoryLine], device_bytes: float | None) -> list[tuple[str, Limit]]:
    """(name, Limit) for this device (when its memory is known) and each of COMMON_GIB."""
    out = [("this device", limit(lines, device_bytes))] if device_bytes else []
    return out + [(f"{gib} GiB", limit(lines, gib * GIB)) for gib in COMMON_GIB]
