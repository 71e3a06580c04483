"""The allowed imports of ARCHITECTURE.md, read from every module's source (ast), not from a list kept by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

# Part of the project -> the other parts it may import (ARCHITECTURE.md, "Allowed imports").
PARTS = ("generator", "collector", "warehouse", "pages", "spool", "settings", "stats", "dashboard", "benchmarks",
         "tests")
ALLOWED = {
    "settings": set(),
    "stats": set(),
    "spool": set(),
    "generator": {"spool", "settings", "stats"},
    "collector": {"spool", "warehouse", "settings"},
    "warehouse": {"settings", "stats"},
    "pages": {"warehouse", "settings"},
    "dashboard": {"pages", "warehouse", "settings"},
}
# Libraries a part must not reach for: the dashboard's framework stays out of the warehouse,
# the database stays out of the pages (SQL lives in warehouse/queries.py), and so on.
FORBIDDEN_LIBRARIES = {
    "settings": {"duckdb", "streamlit", "torch"},
    "stats": {"duckdb", "streamlit", "torch", "pandas"},
    "spool": {"duckdb", "streamlit", "torch"},
    "generator": {"duckdb", "streamlit"},
    "collector": {"streamlit", "torch", "diffusers"},
    "warehouse": {"streamlit", "torch", "diffusers"},
    "pages": {"duckdb", "torch", "diffusers"},
    "dashboard": {"duckdb", "torch", "diffusers"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Top-level names of every module the file imports (relative imports stay in the part)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules():
    for path in sorted(ROOT.glob("*.py")) + sorted(ROOT.glob("*/*.py")):
        if ".venv" not in path.parts and _part(path) in ALLOWED:
            yield path


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_each_module_imports_only_what_its_part_may(path):
    part = _part(path)
    imported = _imports(path)
    others = {name for name in imported if name in PARTS and name != part}
    assert others <= ALLOWED[part], f"{part} may import {sorted(ALLOWED[part])}, got {sorted(others)}"
    libraries = imported & FORBIDDEN_LIBRARIES[part]
    assert not libraries, f"{part} must not import {sorted(libraries)}"


def test_the_rules_cover_every_part_that_has_code():
    parts = {_part(p) for p in list(ROOT.glob("*.py")) + list(ROOT.glob("*/*.py")) if ".venv" not in p.parts}
    assert parts - {"benchmarks", "tests"} <= set(ALLOWED), parts - set(ALLOWED)
    # The test reads real imports: the collector's ingest module imports the spool contract.
    assert "spool" in _imports(ROOT / "collector" / "ingest.py")
