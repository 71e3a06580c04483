"""How reproducible the answer is: the default sweep run three times, one after another (make bench).

For each image size it prints, over the three sweeps, the headline (images/s at the largest batch
over the smallest), the fixed share of the smallest batch's time, and the knee (or "no knee") of
the cost model, with each figure's spread: (largest - smallest) / 2 / median. Target on a quiet
2-core machine: headline and fixed share within ±5%, the same knee every time. Nothing asserts on
time; the figures go to bench-results.json beside the others.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.results import Results
from warehouse import analysis
from warehouse.queries import Warehouse

TARGET = 0.05   # ±5% spread of the headline and of the fixed share


def one_sweep(folder: Path, extra: list[str]) -> dict[str, dict]:
    """Run the default sweep into `folder`, ingest it, and return per size: headline, fixed share, knee."""
    spool, db = folder / "spool", folder / "w.duckdb"
    subprocess.run([sys.executable, "-m", "generator", "sweep", "--spool", str(spool), "--out", str(folder / "img"),
                    "--save-images", "none", *extra], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "collector", "ingest", "--spool", str(spool), "--db", str(db)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = Warehouse(str(db)).runs()
    tp, costs = Warehouse(str(db)).throughput(list(runs.run_id)), Warehouse(str(db)).job_costs(list(runs.run_id))
    models = analysis.run_models(costs)
    out = {}
    for run in runs.itertuples():
        scaled = analysis.scaling(tp[tp.run_id == run.run_id])
        model = models.get(run.run_id)
        fitted = isinstance(model, analysis.CostModel)
        out[f"{run.height}x{run.width} {run.mode}"] = {
            "headline": scaled.speedup if scaled else float("nan"),
            "fixed_share": model.fixed_share.value if fitted else float("nan"),
            "knee": (f"knee {model.knee.value:g}" if fitted and model.saturates
                     else "no knee" if fitted else model.reason if model else "no jobs")}
    return out


def spread(values: list[float]) -> float:
    """(largest - smallest) / 2 / median: ±this around the median covers every value."""
    return (max(values) - min(values)) / 2 / abs(statistics.median(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3, help="default sweeps to run one after another")
    parser.add_argument("--keep", help="folder to keep the sweeps' spools and warehouses in (default: a temporary "
                                           "one, removed after)")
    parser.add_argument("sweep_args", nargs="*", help="extra flags for every sweep (after --)")
    args = parser.parse_args(argv)
    results = Results()
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = []
        for i in range(args.sweeps):
            print(f"sweep {i + 1} of {args.sweeps} ...", flush=True)
            sweeps.append(one_sweep(Path(args.keep or tmp) / str(i), args.sweep_args))
    print(f"\nReproducibility over {args.sweeps} default sweeps (target: headline and fixed share within "
          f"±{TARGET:.0%}, the same knee)")
    print(f"{'run':<22}{'headline (x)':<28}{'spread':>8}   {'fixed share':<24}{'spread':>8}   knee")
    for name in sweeps[0]:
        heads = [s[name]["headline"] for s in sweeps if name in s]
        shares = [s[name]["fixed_share"] for s in sweeps if name in s]
        knees = [s[name]["knee"] for s in sweeps if name in s]
        h, f = spread(heads), spread(shares)
        same = len(set(knees)) == 1
        print(f"{name:<22}{', '.join(f'{x:.2f}' for x in heads):<28}{h:>7.1%}   "
              f"{', '.join(f'{x:.0%}' for x in shares):<24}{f:>7.1%}   {' / '.join(knees)}"
              f"   {'met' if h <= TARGET and f <= TARGET and same else 'NOT met'}")
        results.add(f"reproducibility {name} headline spread", h, "fraction", f"<= {TARGET}", h <= TARGET)
        results.add(f"reproducibility {name} fixed-share spread", f, "fraction", f"<= {TARGET}", f <= TARGET)
        results.add(f"reproducibility {name} same knee", float(same), "bool", "1", same)
    results.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
