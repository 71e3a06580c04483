"""CLI: `python -m generator sweep ...` (every flag sets one SweepConfig field), `load` (LoadConfig), `serve`
(ServeConfig: the OpenAI Images API server of generator/serve/api.py) and `demo` (the default demo's sweep:
generator/demo.py)."""

from __future__ import annotations

import argparse
import sys

from generator.demo import describe, run_demo
from generator.pipelines.parts import ModelLoadError
from generator.run import run_load, run_sweep
from generator.serve.api import serve
from generator.serve.levels import LoadConfig
from generator.serve.config import ServeConfig
from generator.sweep.config import SweepConfig
from settings import add_flags, from_flags, given_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator",
                                     description="Run batched latent-diffusion jobs and write spool files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="sweep batch sizes (and sizes) and write one spool file per job")
    add_flags(sweep, SweepConfig)
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    load = sub.add_parser("load", help="requests arriving under load, served by the fifo, batch and stream "
                                       "policies, with the latency the batch cost predicts beside the measured")
    add_flags(load, LoadConfig)
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    server = sub.add_parser("serve", help="an image server speaking the OpenAI Images API (POST "
                                          "/v1/images/generations) over one scheduling policy; every request it "
                                          "takes is recorded in the spool")
    add_flags(server, ServeConfig)
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
    if args.command == "serve":
        return _serve(parser, args)
    try:
        cfg = from_flags(args, SweepConfig)
    except ValueError as exc:
        parser.error(str(exc))  # exits 2 with "error: <message>"
    return _report(lambda: [run_sweep(cfg, progress=not args.quiet)], "spool files", cfg.spool,
                   "every job finished so far is in the spool, except any reported above as not written",
                   "The spool cannot record a failure it cannot write: the jobs not written are only in the "
                   "messages above")


def _load(parser, args) -> int:
    """Run a load run: every policy at every load, one spool file per level."""
    try:
        cfg = from_flags(args, LoadConfig)
    except ValueError as exc:
        parser.error(str(exc))
    return _report(lambda: [run_load(cfg, progress=not args.quiet)], "load levels", cfg.spool,
                   "every level finished so far is in the spool")


def _serve(parser, args) -> int:
    """Serve until Ctrl-C; the traffic taken is in the spool (one load level per busy spell)."""
    try:
        cfg = from_flags(args, ServeConfig)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        serve(cfg)
    except KeyboardInterrupt:
        pass
    print(f"stopped: the traffic served is in {cfg.spool}", file=sys.stderr)
    return 0


def _demo(args) -> int:
    """Run the demo's parts into one sweep; the same exits as a sweep's."""
    flags = given_flags(args, SweepConfig)
    return _report(lambda: run_demo(progress=not args.quiet, **flags), "spool files",
                   flags.get("spool") or SweepConfig().spool, "every job finished so far is in the spool")


def _report(work, what: str, spool: str, interrupted: str, unwritten_hint: str = "") -> int:
    """Run `work` (returning records.outcome.Outcome lists) and say how it ended: 0 done, 1 some files not
    written, 2 a bad model or value, 130 interrupted."""
    try:
        outcomes = work()
    except (ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return 130
    unwritten = [u for o in outcomes for u in o.unwritten]
    written = sum(len(o) for o in outcomes)
    if unwritten:
        reasons = "; ".join(sorted({u.reason for u in unwritten}))
        n = len(unwritten)
        print(f"error: {n} {what if n != 1 else what.rstrip('s')} could not be written ({reasons}); {written} "
              f"were written to '{spool}'." + (f" {unwritten_hint}" if unwritten_hint else ""), file=sys.stderr)
        return 1
    print(f"wrote {written} {what} to {spool}", file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(main())
