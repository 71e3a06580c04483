"""Benchmark results as data: one row per figure, written to bench-results.json beside the printed tables.

Each script adds its figures to one file (rows keyed by name, so a second script adds
to what the first wrote) with the machine's metadata collected once per run.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(os.environ.get("BENCH_RESULTS") or "bench-results.json")


def metadata() -> dict:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


class Results:
    """Figures of one benchmark script; `save()` merges them into RESULTS and returns the missed ones."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, name: str, value: float, unit: str, target: str | None = None, met: bool | None = None) -> None:
        self.rows.append({"name": name, "value": value, "unit": unit, "target": target, "met": met})

    def save(self, path: Path = RESULTS) -> list[dict]:
        try:
            old = {r["name"]: r for r in json.loads(path.read_text())["rows"]}
        except (OSError, ValueError, KeyError):
            old = {}
        old.update({r["name"]: r for r in self.rows})
        path.write_text(json.dumps({"metadata": metadata(), "rows": list(old.values())}, indent=1) + "\n")
        missed = [r for r in self.rows if r["met"] is False]
        print(f"\nwrote {len(self.rows)} figures to {path}; targets missed: "
              + (", ".join(f"{r['name']} ({r['value']:.3g} {r['unit']}, target {r['target']})" for r in missed)
                 or "none"))
        return missed
