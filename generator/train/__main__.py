"""python -m generator.train: train the embedded models and write the weights the pipelines ship with.

    python -m generator.train                     # every stage, about 40 minutes on two cores
    python -m generator.train --scale 0.05        # a quick look: a twentieth of every stage's steps

A stopped run goes on from its checkpoints (--checkpoints) when started again with the same settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from generator.train import stages
from generator.train.loop import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.train", description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(TrainConfig):
        if f.name == "progress":
            continue
        kind = {"out": Path, "checkpoints": Path, "seed": int, "pictures": int, "scale": float,
                "stop_after": int}[f.name]
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, help=f.metadata["help"])
    parser.add_argument("--only", default=",".join(stages.STAGES),
                        help=f"Stages to run, in order (default all: {','.join(stages.STAGES)}); the weights files "
                             "are written only when all ran.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bars.")
    args = parser.parse_args(argv)
    only = tuple(s for s in args.only.split(",") if s)
    bad = [s for s in only if s not in stages.STAGES]
    if bad:
        parser.error(f"--only: unknown stage {bad[0]!r}; the stages are {', '.join(stages.STAGES)}")
    try:
        cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                             if f.name != "progress"}, progress=not args.no_progress)
    except ValueError as exc:
        parser.error(str(exc))
    result = train(cfg, only)
    for r in result.results:
        print(f"{r.stage}: {r.steps} steps, final loss {r.loss:.4f}, {r.seconds:.0f} s")
    for path in result.files:
        print(f"wrote {path}")
    if not result.finished:
        print(f"stopped after {cfg.stop_after} steps; run again to go on from {cfg.checkpoints}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
