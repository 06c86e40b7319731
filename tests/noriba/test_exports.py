"""Export specs: every mistake reported with file and field; the repo's specs load; `noriba demo` ends with the catalog and a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_every_mistake_in_an_export_spec_is_reported_with_file_and_field(tmp_path):
    from noriba.exports import load_export_spec
    from noriba.specs import SpecError

    (tmp_path / "exports").mkdir()
    bad = tmp_path / "exports" / "my-region.yml"
    bad.write_text(
        "id: other\nfeeds: {ids: [a], colour: red}\narea: {bbox: [141, 43, 140, 44]}\ndates: {start: 2026-13-01}\n"
        "formats: [gtfs, xlsx]\nmerge: {stop_distance_m: -5}\nlicense: {}\nsurprise: 1\n"
        "ingest: [{glob: 'x/*.zip', timezone: Tokyo}]\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_export_spec(bad, specs_dir=tmp_path)
    text = "\n".join(err.value.problems)
    for field in ("id:", "feeds.colour:", "area.bbox:", "dates:", "formats:", "merge.stop_distance_m:", "license:", "surprise:",
                  "ingest[0]: timezone:"):
        assert f"{bad}: {field}" in text, field
    assert all(p.startswith(str(bad)) for p in err.value.problems)


def test_repo_export_specs_load_and_name_their_feeds():
    from noriba.exports import load_export_specs

    specs = {s.id: s for s in load_export_specs()}
    assert {"demo-region", "sfbay-511-2018", "gunma-2019"} <= set(specs)
    assert specs["demo-region"].feed_ids == ("minato-city-bus", "minato-community-timetable", "kita-coast-line")
    assert specs["gunma-2019"].ingest[0]["profile"] == "gtfs-jp"


def test_export_naming_an_unknown_feed_says_how_to_ingest_it(ws):
    from noriba.exports import parse_export_spec, select_feeds
    from noriba.specs import SpecError

    spec = parse_export_spec({"id": "x", "feeds": {"ids": ["nowhere"]}, "license": {"id": "CC0-1.0"}}, where="x.yml", root=ROOT)
    with pytest.raises(SpecError, match="nowhere has no version .*noriba ingest FILE --id nowhere"):
        select_feeds(spec, ws, feed_specs=[])


def test_demo_ends_with_the_catalog_page_and_a_municipality_report(tmp_path, capsys):
    from noriba.cli import main

    assert main(["--home", str(tmp_path / "home"), "demo"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    catalog = next(line.split(":", 1)[1].split()[0] for line in out.splitlines() if line.strip().startswith("catalog"))
    report = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("report"))
    index = open(catalog, encoding="utf-8").read()
    assert "demo-region" in index and "reports/99001/index.html" in index
    assert "みなと市 公共交通レポート" in open(report, encoding="utf-8").read()
    # the demo bus's simulated realtime is in demo-region: noriba serve serves it merged, in the export's ids
    assert "merged rt : http://127.0.0.1:8000/rt/demo-region/trip-updates.pb" in out
    # and its vehicle locations, trips performed and stop visits are written as TIDES tables
    tides = next(line.split(":", 1)[1].split(" (")[0].strip() for line in out.splitlines() if line.strip().startswith("TIDES"))
    package = json.loads((Path(tides) / "datapackage.json").read_text(encoding="utf-8"))
    assert {r["name"]: r["rows"] > 0 for r in package["resources"]} == {
        "vehicle_locations": True, "trips_performed": True, "stop_visits": True}
    assert not package["problems"]
    # the demo export's own warnings (its inputs did not have them) are named, not only counted as "(new warnings)"
    manifest = json.loads(next((Path(catalog).parents[1] / "demo-region").glob("*/manifest.json")).read_text(encoding="utf-8"))
    new_warnings = manifest["validation"]["new_warnings"]
    said = captured.out + captured.err
    assert ("(new warnings)" in said) == bool(new_warnings), said[-3000:]
    for code, e in new_warnings.items():
        assert f"{code} {e['count']:,} (inputs {e['inputs']:,})" in said


def test_export_command_rejects_an_unknown_id(tmp_path, capsys):
    from noriba.cli import main

    assert main(["--home", str(tmp_path / "home"), "export", "nope"]) == 2
    assert "nope: neither an export spec" in capsys.readouterr().err


def test_an_export_build_killed_after_its_folder_was_in_place_is_finished_by_the_next_build(tmp_path):
    from noriba.exports import build_export, parse_export_spec
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace
    from tests.conftest import make_spec, write_feed
    from tests.warehouse.test_merge import FEED_A, FEED_B

    ws = Workspace(tmp_path / "home").ensure()
    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", FEED_A)), ws, contracts=False, export=False)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", FEED_B)), ws, contracts=False, export=False)
    spec = parse_export_spec({"id": "mini-region", "feeds": {"ids": ["mini-a", "mini-b"]}, "license": {"id": "CC0-1.0"},
                              "formats": ["gtfs"]}, where="test", root=ROOT)
    first = build_export(spec, ws, validate=False)
    root = ws.exports / "mini-region"
    latest = (root / "latest.json").read_text(encoding="utf-8")
    # the state a kill between the folder's rename and latest.json leaves, plus a killed build's temporary folder
    (root / "latest.json").unlink()
    (root / "crosswalk.csv").unlink()
    (root / ".0123456789abcdef.tmp").mkdir()
    (root / "crosswalk.tmp").write_text("half", encoding="utf-8")
    again = build_export(spec, ws, validate=False)
    assert again["export_version"] == first["export_version"] and "left by an interrupted build" in again["message"]
    assert (root / "latest.json").read_text(encoding="utf-8") == latest
    assert (root / "crosswalk.csv").read_bytes() == (root / first["export_version"] / "crosswalk.csv").read_bytes()
    # the build's own files, and the catalog's stable latest.zip; no temporary file is left
    assert sorted(p.name for p in root.iterdir() if p.name != "latest.zip") == sorted([first["export_version"], "crosswalk.csv", "latest.json"])
    third = build_export(spec, ws, validate=False)
    assert third["status"] == "unchanged" and "nothing to do" in third["message"]


def test_export_command_warns_when_the_feeds_service_periods_do_not_overlap(tmp_path, monkeypatch, capsys):
    from noriba.cli import main
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace
    from tests.conftest import make_spec, write_feed
    from tests.warehouse.test_merge import FEED_A, FEED_B

    specs = tmp_path / "specs"
    (specs / "exports").mkdir(parents=True)
    (specs / "feeds").mkdir()
    (specs / "exports" / "two-years.yml").write_text(
        "id: two-years\nfeeds: {ids: [mini-a, mini-b]}\nlicense: {id: CC0-1.0}\nformats: [gtfs]\n", encoding="utf-8")
    monkeypatch.setenv("NORIBA_SPECS", str(specs))
    ws = Workspace.from_env(str(tmp_path / "home")).ensure()
    later = {**FEED_B, "calendar.txt": FEED_B["calendar.txt"].replace("20260401,20270331", "20270401,20280331")}
    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", FEED_A)), ws)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", later)), ws)
    assert main(["--home", str(tmp_path / "home"), "export", "two-years", "--quiet"]) == 0
    out = capsys.readouterr().err  # the CLI's messages go to stderr
    assert "warning: service periods do not overlap: mini-a (2026-04-01 – 2027-03-31) and mini-b (2027-04-01 – 2028-03-31)" in out
    assert "new warnings: missing_feed_contact_email_and_url 1 (inputs 0)" in out  # the merge's own, named like new errors
