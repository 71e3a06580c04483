"""How numbers are written in every sentence: shares, estimates with their intervals, lists of sizes."""

from __future__ import annotations

from collections.abc import Callable

from ..costmodel import Estimate

Cite = Callable[[str], str]  # a paper's key -> a link to its row on the Papers page

NO_INTERVAL = "(no interval: too few jobs)"


def pct(x: float) -> str:
    return f"{x:.0%}"


def g(x: float) -> str:
    """Three significant figures; below a nanosecond (a fit's rounding) reads as 0."""
    return f"{0.0 if abs(x) < 1e-9 else x:.3g}"


def est(e: Estimate, unit: str = " s") -> str:
    """A figure with its 95% interval: '0.12 s [0.10–0.14]' ('0.12 s (no interval: too few jobs)' without)."""
    if not e.has_interval:
        return f"{g(e.value)}{unit} {NO_INTERVAL}"
    return f"{g(e.value)}{unit} [{g(e.low)}–{g(e.high)}]"


def share(e: Estimate) -> str:
    if not e.has_interval:
        return f"{pct(e.value)} {NO_INTERVAL}"
    return f"{pct(e.value)} [{pct(e.low)}–{pct(e.high)}]"


def too_few(jobs: int, needed: int) -> str:
    """The one wording of a median (or ratio) without an interval: '3 repeats: too few for a 95% interval (6
    needed)'."""
    return f"{jobs} {'repeat' if jobs == 1 else 'repeats'}: too few for a 95% interval ({needed} needed)"
