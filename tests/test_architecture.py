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


def _all_modules():
    """Every Python file of the checkout, at any depth (warehouse/explain/ too), but none of a virtual
    environment or another hidden folder."""
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if not any(part.startswith(".") for part in rel.parts[:-1]):
            yield path


def _modules():
    for path in _all_modules():
        if _part(path) in ALLOWED:
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
    parts = {_part(p) for p in _all_modules()}
    assert parts - {"benchmarks", "tests"} <= set(ALLOWED), parts - set(ALLOWED)
    # The test reads real imports: the collector's ingest module imports the spool contract.
    assert "spool" in _imports(ROOT / "collector" / "ingest.py")
    # Every depth is read: warehouse/explain/ is checked as the warehouse's.
    assert ROOT / "warehouse" / "explain" / "__init__.py" in set(_modules())


# -- inside the generator: layers, one concept each, no import running back up ------------------------------------

# The generator's layers, lowest first (ARCHITECTURE.md). A module may import its own layer's modules and any
# layer below; sweep and serve are side by side (neither imports the other). `__init__` files hold no code.
LAYERS = {
    "records": 0,     # ids, what a run wrote and the one report of a spool file not written
    "measure": 1,     # timing, profiling, telemetry, ceilings, peaks, image checks, the shapes data set and its reading
    "pipelines": 2,   # the models, presets, LDM, inputs, the ways of calling a pipeline, Stream Batch
    "sweep": 3,       # settings, plan, rounds, one job, the run record, the sweep loop
    "serve": 3,       # arrivals, policies, the server loop, load levels and runs, the router
    "train": 3,       # training the embedded models on the shapes data set
    "cluster": 4,     # reaching Ray, the messages, sweep workers, load servers, replicas
    "run": 5,         # the one driver: in-process or on Ray
    "demo": 6,
    "__main__": 7,
}
GENERATOR = ROOT / "generator"


def _layer(path: Path) -> str:
    rel = path.relative_to(GENERATOR)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _generator_imports(path: Path) -> set[str]:
    """The generator modules a generator file imports (anywhere in it: in a function too), as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}: a relative import; the generator's "
                                 "imports name their subpackage (from generator.<layer>.<module> import ...)")
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "generator"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "generator":
            # `from generator.measure import telemetry` imports the module generator.measure.telemetry
            for a in node.names:
                full = f"{node.module}.{a.name}"
                names.add(full if _module_path(full) else node.module)
    return names


def _module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _generator_modules():
    return [p for p in sorted(GENERATOR.rglob("*.py"))]


def test_every_generator_module_is_in_a_layer():
    assert {_layer(p) for p in _generator_modules()} - {"__init__"} <= set(LAYERS)


@pytest.mark.parametrize("path", _generator_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_each_generator_module_imports_only_its_layer_and_those_below(path):
    mine = _layer(path)
    for name in _generator_imports(path):
        assert _module_path(name), f"{name} is not a module of the generator"
        theirs = _layer(_module_path(name))
        if mine == "__init__" or theirs == mine or theirs == "__init__":
            continue
        assert LAYERS[theirs] < LAYERS[mine], (
            f"generator/{mine} (layer {LAYERS[mine]}) imports {name} (generator/{theirs}, layer {LAYERS[theirs]}): "
            "an import may only run down the layers")


def test_no_two_generator_modules_import_each_other_round_a_circle():
    graph = {p: {_module_path(n) for n in _generator_imports(p)} - {None, p} for p in _generator_modules()}
    done, on_path = set(), []

    def visit(node):
        if node in on_path:
            circle = on_path[on_path.index(node):] + [node]
            raise AssertionError("import circle: " + " -> ".join(p.relative_to(ROOT).as_posix() for p in circle))
        if node in done:
            return
        on_path.append(node)
        for nxt in graph.get(node, ()):
            visit(nxt)
        on_path.pop()
        done.add(node)

    for node in graph:
        visit(node)


# -- imports of our own modules at the top of the file ----------------------------------------------------------

OWN = set(PARTS) - {"tests", "benchmarks"}
# The one-line reason an import of our own may stay inside a function: a heavy or optional dependency it pulls in.
REASONS = ("# heavy:", "# optional:")


def _in_function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each import of our own modules inside a function, without a heavy:/optional: reason."""
    text = path.read_text()
    lines = text.splitlines()
    found = set()
    for fn in ast.walk(ast.parse(text, str(path))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                own = any(a.name.split(".")[0] in OWN for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                own = node.level > 0 or (node.module or "").split(".")[0] in OWN
            else:
                continue
            line = lines[node.lineno - 1]
            if own and not any(reason in line for reason in REASONS):
                found.add((node.lineno, line.strip()))
    return sorted(found)


@pytest.mark.parametrize("path", [p for p in _modules() if _part(p) not in ("tests", "benchmarks")],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_product_code_imports_our_own_modules_at_the_top(path):
    found = _in_function_imports(path)
    assert not found, (f"{path.relative_to(ROOT)} imports our own modules inside a function (move them to the top, "
                       f"or give a heavy dependency a '# heavy: <reason>' comment): {found}")


def test_the_in_function_check_finds_what_it_should(tmp_path):
    """The check reads real code: a module with one import of ours in a function, one with a reason, one at top."""
    sample = tmp_path / "sample.py"
    sample.write_text("import json\nfrom spool import record\n\n\ndef f():\n    from generator.records import ids\n"
                      "    from generator.pipelines import ldm  # heavy: diffusers\n    import os\n"
                      "    return ids, ldm, os\n")
    assert _in_function_imports(sample) == [(6, "from generator.records import ids")]
