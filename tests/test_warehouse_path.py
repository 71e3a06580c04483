"""The dashboard's warehouse is the server's: fixed at start (`--warehouse PATH`, else env WAREHOUSE_DB), and one
message for a file that is missing and one that cannot be opened."""

from __future__ import annotations

import pytest

from warehouse import db
from warehouse.db import NoWarehouse
from warehouse.queries import Warehouse


def test_the_flag_wins_over_the_environment_which_wins_over_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("WAREHOUSE_DB", str(tmp_path / "env.duckdb"))
    assert db.server_db_path(["--warehouse", str(tmp_path / "flag.duckdb")]) == str(tmp_path / "flag.duckdb")
    assert db.server_db_path(["--other", "x"]) == str(tmp_path / "env.duckdb")
    monkeypatch.delenv("WAREHOUSE_DB")
    assert db.server_db_path([]).endswith("data/warehouse.duckdb")


def test_missing_and_unopenable_paths_read_the_same(tmp_path):
    (tmp_path / "a folder.duckdb").mkdir()  # there, but not a file that can be read
    said = []
    for name in ("missing.duckdb", "a folder.duckdb"):
        for read in (lambda w: w.sweeps(), lambda w: w.run_sql("SELECT 1")):
            with pytest.raises(NoWarehouse) as err:
                read(Warehouse(tmp_path / name))
            said.append(str(err.value).replace(name, "NAME"))
    assert len(set(said)) == 1, said
    assert said[0].startswith("no warehouse at ") and "(or it cannot be read)" in said[0]


def test_a_warehouse_is_its_path_and_nothing_else(tmp_path):
    assert Warehouse(tmp_path / "w.duckdb") == Warehouse(str(tmp_path / "w.duckdb"))
    with pytest.raises(AttributeError):
        Warehouse("w.duckdb").path = "other.duckdb"
