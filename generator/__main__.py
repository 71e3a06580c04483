"""CLI: `python -m generator sweep ...` (every flag sets one SweepConfig field) and `python -m generator demo`
(the default demo's sweep: generator/demo.py)."""

from __future__ import annotations

import argparse
import sys

from settings import add_flags, from_flags, given_flags

from .config import SweepConfig
from .load import LoadConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator",
                                     description="Run batched latent-diffusion jobs and write spool files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="sweep batch sizes (and sizes) and write one spool file per job")
    add_flags(sweep, SweepConfig)
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    from .demo import describe

    load = sub.add_parser("load", help="requests arriving under load, served by the fifo, batch and stream "
                                       "policies, with the latency the batch cost predicts beside the measured")
    add_flags(load, LoadConfig)
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    demo = sub.add_parser("demo", help="the default demo: one sweep that shows every effect the dashboard explains, "
                                       "on the tiny models (a few minutes on 2 CPU cores)",
                          description=f"Parts: {describe()}.")
    add_flags(demo, SweepConfig, only=("spool", "out"))
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "load":
        return _load(parser, args)
    try:
        cfg = from_flags(args, SweepConfig)
    except ValueError as exc:
        parser.error(str(exc))  # exits 2 with "error: <message>"
    from .models import ModelLoadError
    from .sweep import run_sweep

    try:
        written = run_sweep(cfg, progress=not args.quiet)
    except (ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every job finished so far is in the spool, except any reported above as not written",
              file=sys.stderr)
        return 130
    if written.unwritten:
        reasons = "; ".join(sorted({u["reason"] for u in written.unwritten}))
        n = len(written.unwritten)
        print(f"error: {n} spool file{'s' if n != 1 else ''} could not be written ({reasons}); "
              f"{len(written)} were written to '{cfg.spool}'. The spool cannot record a failure it cannot write: "
              "the jobs not written are only in the messages above", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} spool files to {cfg.spool}", file=sys.stderr)
    return 0


def _load(parser, args) -> int:
    """Run a load run: every policy at every load, one spool file per level."""
    from .load import run_load
    from .models import ModelLoadError

    try:
        cfg = from_flags(args, LoadConfig)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        written = run_load(cfg, progress=not args.quiet)
    except (ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every level finished so far is in the spool", file=sys.stderr)
        return 130
    if written.unwritten:
        print(f"error: {len(written.unwritten)} load levels could not be written; {len(written)} were written to "
              f"'{cfg.spool}'", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} load levels to {cfg.spool}", file=sys.stderr)
    return 0


def _demo(args) -> int:
    """Run the demo's parts into one sweep; the same exits as a sweep's."""
    from .demo import run_demo

    try:
        outcomes = run_demo(progress=not args.quiet, **given_flags(args, SweepConfig))
    except KeyboardInterrupt:
        print("interrupted: every job finished so far is in the spool", file=sys.stderr)
        return 130
    unwritten = [u for o in outcomes for u in o.unwritten]
    written = sum(len(o) for o in outcomes)
    if unwritten:
        print(f"error: {len(unwritten)} spool files could not be written; {written} were written", file=sys.stderr)
        return 1
    print(f"wrote {written} spool files (one sweep, {len(outcomes)} parts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
