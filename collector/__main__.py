"""CLI: `python -m collector ingest|watch`; every flag sets one CollectorConfig field."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from settings import add_flags, from_flags
from warehouse.db import CorruptWarehouse, WarehouseBusy

from .ingest import CollectorConfig, ingest_pending
from .status import format_status, record_error, status

log = logging.getLogger("collector")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collector",
                                     description="Ingest spool files into the DuckDB warehouse, exactly once.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("ingest", "ingest every complete spool file once, then exit (for cron)"),
                            ("watch", "ingest continuously: file events plus a periodic rescan"),
                            ("status", "pending, ingested and quarantined files, lag, last error")]:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add_flags(cmd, CollectorConfig)
        if name == "ingest":
            cmd.add_argument("--once", action="store_true", help="accepted for cron lines; ingest always runs once")
    return parser


def watch(cfg: CollectorConfig, stop: threading.Event | None = None) -> None:
    """Ingest on every new spool file (watchdog) and at least every `interval` seconds."""
    from pathlib import Path

    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    stop = stop or threading.Event()
    wake = threading.Event()

    class OnSpoolFile(FileSystemEventHandler):
        # Spool files appear by an atomic rename (on_moved); a plain copy shows as on_created.
        def on_created(self, event):
            if not event.is_directory and event.src_path.endswith(".jsonl"):
                wake.set()

        def on_moved(self, event):
            if not event.is_directory and str(event.dest_path).endswith(".jsonl"):
                wake.set()

    spool = Path(cfg.spool)
    spool.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(OnSpoolFile(), str(spool), recursive=True)
    observer.start()
    log.info("watching %s -> %s (rescan every %.1f s)", spool, cfg.db, cfg.interval)
    first = True
    try:
        while not stop.is_set():
            wake.clear()
            try:
                report = ingest_pending(cfg, upgrade=first)
                first = False
                if report.files or report.quarantined:
                    log.info("%s", report)
            except CorruptWarehouse:  # retrying cannot mend the file: stop and say so
                raise
            except Exception as exc:  # the spool keeps everything: log, wait, try again
                log.error("ingest failed, will retry: %s", exc)
                record_error(cfg.spool, str(exc).splitlines()[0])
            wake.wait(cfg.interval)
            stop.wait(0.2)  # let a burst of files land before the next pass
    finally:
        observer.stop()
        observer.join()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s collector %(levelname)s %(message)s")
    try:
        cfg = from_flags(args, CollectorConfig)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "status":
        print(format_status(status(cfg)))
        return 0
    try:
        if args.command == "watch":
            watch(cfg)
            return 0
        report = ingest_pending(cfg, upgrade=True)
    except (WarehouseBusy, CorruptWarehouse) as exc:  # the spool keeps everything; nothing was moved
        record_error(cfg.spool, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("stopped")
        return 0
    print(f"{report} into {cfg.db}")
    for file_id, reason in report.quarantined:
        print(f"  quarantined {file_id}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
