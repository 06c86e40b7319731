"""`noriba trips` on a zone layer: a rerun of an unchanged layer says so and does not rewrite its rows."""

from __future__ import annotations

import duckdb

from noriba.cli import main

LAYER = "minato-districts"  # specs/trips/minato-districts.yml: six demo districts


def _zones(home):
    con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
    try:
        return con.execute("SELECT rowid, zone_id, geometry_wkt FROM trips.zones WHERE zone_layer = ? ORDER BY zone_id", [LAYER]).fetchall()
    finally:
        con.close()


def test_rerun_of_an_unchanged_zone_layer_says_unchanged_and_keeps_its_rows(tmp_path, capsys):
    home = tmp_path / "h"
    assert main(["--home", str(home), "trips", LAYER, "--quiet"]) == 0
    first = capsys.readouterr().err
    assert f"{LAYER}: 6 zones published" in first
    before = _zones(home)
    assert main(["--home", str(home), "trips", LAYER, "--quiet"]) == 0
    again = capsys.readouterr().err
    assert "unchanged" in again and "published" not in again, again
    assert _zones(home) == before  # same rows, same row ids: nothing deleted and inserted again


def test_rerun_republishes_a_zone_layer_whose_warehouse_rows_were_lost(tmp_path, capsys):
    home = tmp_path / "h"
    assert main(["--home", str(home), "trips", LAYER, "--quiet"]) == 0
    from warehouse.workspace import Workspace
    from warehouse.publish import connect

    con = connect(Workspace(home))  # the writer's file (noriba.duckdb is its published copy)
    con.execute("DELETE FROM trips.zones WHERE zone_layer = ? AND zone_id = (SELECT min(zone_id) FROM trips.zones WHERE zone_layer = ?)",
                [LAYER, LAYER])
    con.close()
    capsys.readouterr()
    assert main(["--home", str(home), "trips", LAYER, "--quiet"]) == 0
    assert f"{LAYER}: 6 zones published" in capsys.readouterr().err
    assert len(_zones(home)) == 6
