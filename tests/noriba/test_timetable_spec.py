"""Timetable specs: every mistake reported with file and field; sources archived as one zip; the demo feed."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import ROOT
from tests.transforms.timetable.helpers import CONFIG


def _doc(**timetable_changes) -> dict:
    tt = {**CONFIG, **timetable_changes}
    return {"id": "t", "kind": "timetable", "source": {"path": "demo/inputs/minato-community-timetable"}, "timetable": tt}


def test_every_mistake_in_a_timetable_section_is_reported_with_file_and_field(tmp_path):
    from noriba.specs import SpecError, load_spec

    doc = _doc(layout={"trips": "columns", "stop_column": "B2"},
               calendar={"start": "2026-13-01", "end": "2027-03-31", "services": {"weekday": {"days": ["monday"]}}},
               workbooks=[{"file": "nowhere.xls", "service": "weekend"}],
               stops={**CONFIG["stops"], "format": "shapefile"})
    path = tmp_path / "feeds" / "t.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path, specs_dir=ROOT / "specs")
    problems = "\n".join(exc.value.problems)
    for expected in ("timetable.layout.stop_column: 'B2' is not a column letter",
                     "timetable.layout.first_stop_row: missing",
                     "timetable.layout.first_trip_column: missing",
                     "timetable.calendar.start: '2026-13-01' is not a date",
                     "timetable.calendar.services.weekday.days: must be a list of mon",
                     "timetable.workbooks[0].file: 'nowhere.xls' is not among the source's files",
                     "timetable.workbooks[0].service: 'weekend' is not a service",
                     "timetable.stops.format: 'shapefile'"):
        assert expected in problems
    assert all(p.startswith(str(path)) for p in exc.value.problems)


def test_kind_timetable_needs_its_section():
    from noriba.specs import SpecError, parse_spec

    with pytest.raises(SpecError, match="timetable: missing or not a mapping"):
        parse_spec({"id": "t", "kind": "timetable", "source": {"path": "x"}}, where="t.yml", root=ROOT)


def test_absent_source_file_is_a_clear_error(ws):
    from noriba.fetch import fetch
    from noriba.specs import parse_spec
    from transforms.adapters import InputError

    doc = _doc()
    doc["source"] = {"files": {"平日.csv": "no/such/平日.csv", "stops.csv": "no/such/stops.csv"}}
    doc["timetable"]["workbooks"] = [{"file": "平日.csv", "service": "weekday"}]
    spec = parse_spec(doc, where="t.yml", root=ROOT)
    with pytest.raises(InputError, match=r"no/such/平日.csv \(平日.csv\): no such file \(feed 't', source.files\); 1 more missing"):
        fetch(ws, spec.id, spec.source)


def test_files_and_settings_are_archived_as_one_deterministic_zip(ws, tmp_path):
    import zipfile

    from noriba.fetch import fetch
    from noriba.specs import parse_spec

    src = ROOT / "demo" / "inputs" / "minato-community-timetable"
    doc = yaml.safe_load((ROOT / "specs" / "feeds" / "minato-community-timetable.yml").read_text(encoding="utf-8"))
    doc["source"] = {"files": {p.name: str(p) for p in src.iterdir()}}
    spec = parse_spec(doc, where="t.yml", root=ROOT)
    a, b = fetch(ws, spec.id, spec.source), fetch(ws, spec.id, spec.source)
    assert a.source_sha256 == b.source_sha256
    with zipfile.ZipFile(a.raw_path) as zf:
        assert sorted(zf.namelist()) == sorted([p.name for p in src.iterdir()] + ["noriba-timetable.json"])


def test_demo_community_bus_is_published_and_a_changed_cell_makes_a_new_version(ws, tmp_path):
    from noriba.pipeline import run_feed
    from noriba.specs import parse_spec
    from warehouse.publish import connect

    folder = tmp_path / "umikaze"
    shutil.copytree(ROOT / "demo" / "inputs" / "minato-community-timetable", folder)
    doc = yaml.safe_load((ROOT / "specs" / "feeds" / "minato-community-timetable.yml").read_text(encoding="utf-8"))
    doc["source"] = {"path": str(folder)}
    spec = parse_spec(doc, where="minato-community-timetable.yml", root=ROOT)
    first = run_feed(spec, ws, export=False)
    assert first["status"] == "new" and first["errors"] == 0 and first["warnings"] == 0
    assert run_feed(spec, ws, export=False)["status"] == "unchanged"
    con = connect(ws, read_only=True)
    stops = dict(con.sql(f"SELECT stop_id, stop_name FROM gtfs_latest.stops WHERE feed_id = '{spec.id}'").fetchall())
    services = dict(con.sql(f"SELECT service_id, count(*) FROM gtfs_latest.trips WHERE feed_id = '{spec.id}' GROUP BY 1").fetchall())
    con.close()
    assert stops["C04"] == "ＪＡみなと漁港前"  # matched from the timetable's 'JAみなと漁港'
    assert services == {"weekday": 5, "friday": 1, "holiday": 4}
    weekday = folder / "timetable_weekday.csv"
    weekday.write_bytes(weekday.read_bytes().replace(b"16:47", b"16:48"))
    second = run_feed(spec, ws, export=False)
    assert second["status"] == "new" and second["feed_version"] != first["feed_version"]
