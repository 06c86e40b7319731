"""`noriba trips`: one source failing (a file it cannot read, a spec that does not load) does not stop the others; the
run exits non-zero and names each failed source with what to change."""

from __future__ import annotations

import shutil

import duckdb
import yaml

from noriba.cli import main
from tests.conftest import ROOT

GOOD = "pickup,fare\n2026-04-01 10:00,900\n2026-04-01 11:00,500\n"
TITLED = "Report,,\n,,\npickup,fare\n2026-04-01 10:00,900\n"


def _specs(tmp_path, files: dict[str, str], broken: bool = False):
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs" / "schemas", specs / "schemas")
    (specs / "trips").mkdir()
    for sid, text in files.items():
        src = tmp_path / "data" / sid
        src.mkdir(parents=True)
        (src / "t.csv").write_text(text, encoding="utf-8")
        doc = {"id": sid, "kind": "trips", "source": {"path": str(src)}, "timezone": "Asia/Tokyo",
               "trips": {"files": ["*.csv"], "currency": "JPY", "time": {"format": "%Y-%m-%d %H:%M"},
                         "columns": {"pickup_time": "pickup", "total_amount": "fare"}}}
        (specs / "trips" / f"{sid}.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    if broken:
        (specs / "trips" / "c-broken.yml").write_text(
            "id: c-broken\nkind: trips\nsource: {path: /nowhere}\ntimezone: Asia/Tokyo\n"
            "trips: {files: ['*.csv'], zones: {layer: z}, columns: {pickup_time: ts}}\n", encoding="utf-8")
    return specs


def test_a_failing_source_does_not_stop_the_next_and_the_run_lists_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NORIBA_SPECS", str(_specs(tmp_path, {"a-titled": TITLED, "b-good": GOOD}, broken=True)))
    home = tmp_path / "h"
    assert main(["--home", str(home), "trips", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "error: a-titled: t.csv: line 1: none of the columns pickup (trips.columns.pickup_time) is in the header" in err
    assert "set trips.header_row: 3 (or auto)" in err
    assert "error: c-broken: " in err and "trips.zones.layer: names the zone layer 'z' but no column maps to it" in err
    assert "b-good: version " in err and "2 rows in, 2 accepted" in err  # after a-titled failed
    assert "error: trips: 2 of 3 sources failed: c-broken, a-titled (the others ran)" in err
    con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
    assert con.sql("SELECT source_id, count(*) FROM trips.fct_trips GROUP BY 1").fetchall() == [("b-good", 2)]
    con.close()


def test_a_run_where_every_source_works_exits_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NORIBA_SPECS", str(_specs(tmp_path, {"b-good": GOOD})))
    assert main(["--home", str(tmp_path / "h"), "trips", "--quiet"]) == 0
    assert "b-good: version " in capsys.readouterr().err
