"""CLI: `python -m generator sweep ...`; every flag sets one SweepConfig field."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .config_docs import field_docs, flag
from .sweep import SweepConfig


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _str_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


_TYPES = {"batch_sizes": _int_list, "resolutions": _int_list, "height": int, "width": int,
          "steps": int, "repeats": int, "warmup": int, "guidance": float, "seed": int,
          "mode": _str_list, "cfg": _str_list, "sample_hz": float, "max_batch": int}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator",
                                     description="Run batched latent-diffusion jobs and write spool files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="sweep batch sizes (and sizes) and write one spool file per job")
    docs = field_docs(SweepConfig)
    defaults = SweepConfig()
    for f in dataclasses.fields(SweepConfig):
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        # argparse formats help with %, so a literal percent sign must be doubled.
        help_text = docs[f.name].replace("%", "%%") + f" (default: {default})"
        if f.type in ("bool", bool):
            sweep.add_argument(flag(f.name), dest=f.name, action="store_const", const=True, default=None,
                               help=help_text)
        else:
            sweep.add_argument(flag(f.name), dest=f.name, type=_TYPES.get(f.name, str), default=None,
                               help=help_text)
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SweepConfig)
              if getattr(args, f.name) is not None}
    try:
        cfg = SweepConfig(**values)
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


if __name__ == "__main__":
    sys.exit(main())
