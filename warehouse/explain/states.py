"""What the dashboard says when there is nothing to show yet, or the warehouse cannot be read right now."""

from __future__ import annotations

EMPTY_STATE = ("No runs yet: run `python -m generator sweep`, then `python -m collector ingest` "
               "(or keep `python -m collector watch` running).")
NO_RUNS = "No runs yet: run `python -m generator sweep`, then `python -m collector ingest`."
LOAD_ONLY = "This sweep is a load run (`python -m generator load`): its figures are on the Load page."
BUSY = "Warehouse busy, retrying: the collector is writing. This page reloads by itself."
CANNOT_READ = "The warehouse file cannot be read."
CHOOSE_A_RUN = "Choose at least one run."


def warehouse_caption(path: str) -> str:
    """The sidebar's line naming the server's warehouse file."""
    return f"Warehouse: `{path}`"
