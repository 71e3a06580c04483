"""`python -m collector status`: what is pending, ingested and quarantined, the lag, the last error.

The last error is kept in <spool>/.collector-state.json (written atomically), since
the warehouse itself may be what failed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path

from spool import TABLES
from warehouse import db

from .ingest import CollectorConfig, pending_files

STATE_FILE = ".collector-state.json"


def record_error(spool: str, message: str) -> None:
    _write_state(spool, {"last_error": message, "last_error_at": _now()})


def read_state(spool: str) -> dict:
    try:
        return json.loads((Path(spool) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(spool: str, update: dict) -> None:
    folder = Path(spool)
    folder.mkdir(parents=True, exist_ok=True)
    state = {**read_state(spool), **update}
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, folder / STATE_FILE)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # ingested since it was listed
        return None


def status(cfg: CollectorConfig) -> dict:
    """The collector's state as a dict (see `format_status`)."""
    pending = pending_files(Path(cfg.spool))
    oldest = min(filter(None, map(_mtime, pending)), default=None)
    out = {"spool": cfg.spool, "db": cfg.db, "pending_files": len(pending),
           "lag_s": (time.time() - oldest) if oldest is not None else 0.0,
           "ingested_files": None, "records": {}, "quarantined": [], **read_state(cfg.spool)}
    try:
        with db.reader(cfg.db, wait_s=cfg.busy_wait) as con:
            out["ingested_files"], records = con.execute(
                "SELECT count(*), coalesce(sum(records), 0) FROM ingested_files").fetchone()
            out["records"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                              for t in TABLES.values()}
            out["records"]["total"] = int(records)
            out["quarantined"] = con.execute(
                "SELECT file_id, reason FROM quarantined_files ORDER BY quarantined_at").fetchall()
    except db.NoWarehouse:
        out["warehouse"] = "not created yet"
    except db.WarehouseBusy:
        out["warehouse"] = "busy (held by another process)"
    except db.CorruptWarehouse:
        out["warehouse"] = "damaged: not a readable DuckDB file"
    return out


def format_status(s: dict) -> str:
    lines = [f"spool      {s['spool']}", f"warehouse  {s['db']}" + (f" ({s['warehouse']})" if "warehouse" in s else "")]
    lines.append(f"pending    {s['pending_files']} files" +
                 (f", oldest {s['lag_s']:.0f} s old (lag)" if s["pending_files"] else ""))
    if s["ingested_files"] is not None:
        per = ", ".join(f"{k} {v}" for k, v in s["records"].items() if k != "total")
        lines.append(f"ingested   {s['ingested_files']} files, {s['records'].get('total', 0)} records ({per})")
    lines.append(f"quarantine {len(s['quarantined'])} files")
    lines += [f"  {file_id}: {reason}" for file_id, reason in s["quarantined"]]
    if s.get("last_error"):
        lines.append(f"last error {s['last_error_at']}: {s['last_error']}")
    else:
        lines.append("last error none")
    return "\n".join(lines)
