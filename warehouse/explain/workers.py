"""Sentences: a bigger batch or more workers? From warehouse/replicas.py's comparisons and levels.

(Not `scaling`: that name is the package's sentence on one run's largest batch.)
"""

from __future__ import annotations

from ..replicas import TIE, Comparison, Level, beyond_linear


def _rate(x: float) -> str:
    """Images/s to three significant figures: 14.3, 0.872."""
    return f"{x:.3g}"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _range(p) -> str:
    return "" if p.low == p.high else f" [{_rate(p.low)}–{_rate(p.high)}]"


def two_ways(c: Comparison, tie: float = TIE) -> str:
    """k images at once, as a batch of k on one worker and as k workers at batch 1: both figures with their ranges
    and efficiencies, and which gave more images/s, only when it is ahead by more than `tie` and its range lies
    wholly above the other's (replicas.ahead); else that neither is."""
    b, w = c.batch, c.workers
    text = (f"**{c.setting}**, {c.k} images at once: a batch of {c.k} on one worker gave {_rate(b.images_per_s)} "
            f"images/s{_range(b)} (efficiency {b.efficiency:.2f}); {c.k} workers at batch 1 gave "
            f"{_rate(w.images_per_s)} images/s{_range(w)} (efficiency {w.efficiency:.2f}).")
    if c.winner == "bigger batch":
        return text + f" The bigger batch gave {c.ratio:.2f}x the images/s of more workers."
    if c.winner == "more workers":
        return text + f" More workers gave {c.ratio:.2f}x the images/s of the bigger batch."
    return text + f" Their ranges overlap, or they lie within {tie:.0%} of each other: neither way is ahead here."


def shared_hardware(level: Level, single: Level | None = None) -> str | None:
    """When a level's workers shared hardware (replicas.Level.shared): on a CPU, that they split the cores of
    fewer hosts than workers; on a GPU, that they shared fewer GPUs. None when each had its own."""
    if not level.shared:
        return None
    n = level.replicas
    if level.device == "cpu":
        if level.hosts == 1:
            where = "one host's" + ("" if level.cpu_count is None else f" {level.cpu_count}") + " logical CPUs"
        else:
            where = (f"the logical CPUs of {level.hosts} hosts"
                     + ("" if level.cpu_count is None else f" (up to {level.cpu_count} each)"))
        threads = ""
        if level.threads is not None:
            threads = f" ({_n(level.threads, 'torch thread')} each"
            if single is not None and single.threads is not None:
                threads += f"; one worker alone had {single.threads}"
            threads += ")"
        return (f"**{n} workers** split {where}{threads}: more workers was not more hardware "
                "here, only the same cores shared out.")
    return (f"**{n} workers** shared {'one GPU' if level.devices == 1 else f'{level.devices} GPUs'}: more "
            "workers was not more GPUs here, only the same GPU time shared out.")


def more_than_k_fold(c: Comparison, level: Level) -> str | None:
    """When k workers that shared one worker's hardware (level.shared) gave more than k times its images/s,
    beyond both ranges (replicas.beyond_linear): then one worker alone left much of that hardware's time unused.
    None otherwise."""
    if not (level.shared and level.replicas == c.k and beyond_linear(c)):
        return None
    return (f"On the same {'cores' if level.device == 'cpu' else 'GPU'}, {c.k} workers gave "
            f"{c.workers.images_per_s / c.base.images_per_s:.2f}x the images/s of one worker at batch 1 "
            f"({_rate(c.workers.images_per_s)} against {_rate(c.base.images_per_s)}): more than {c.k}-fold, so one "
            "worker alone left much of that hardware's time unused.")


def _behind(level: Level) -> str:
    if level.device == "cpu":
        cpus = "" if level.cpu_count is None else f" ({level.cpu_count} logical CPUs)"
        threads = "" if level.threads is None else f", {_n(level.threads, 'torch thread')}" + (
            " each" if level.replicas > 1 else "")
        return f"{_n(level.replicas, 'worker')} on {_n(level.hosts, 'host')}{cpus}{threads}"
    return f"{_n(level.replicas, 'worker')} on {_n(level.devices, 'GPU')} in {_n(level.hosts, 'host')}"


def hardware_caption(levels: list[Level]) -> str | None:
    """What stood behind each level: '1 worker on 1 host (2 logical CPUs), 2 torch threads; 2 workers on ...'."""
    if not levels:
        return None
    return "Behind the workers: " + "; ".join(_behind(lv) for lv in levels) + "."


def ways_caption() -> str:
    return ("k images at once, three ways: a batch of k on one worker (bigger batch), k workers at batch 1 (more "
            "workers), or N workers at batch B with k = N·B (both). The images/s of several workers is the sum of "
            "each worker's own images/s, measured while the others ran. Efficiency (in the tooltip): the speed-up "
            "over one worker at batch 1, divided by k. In brackets below, the range each figure could take: the "
            "95% intervals of the workers' medians, summed, widened to N times the slowest and the fastest worker.")


def places_caption() -> str:
    return ("Images per second of each run setting at each batch size, by where it ran (host · device). With "
            "several workers on one place, the median of their images/s, each measured while the others ran.")
