"""Kind ondemand end to end: a spec written by following specs/README.md becomes a published GTFS-Flex feed."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import duckdb
import pytest

from noriba.specs import SpecError, load_spec

README = Path(__file__).resolve().parents[2] / "specs" / "README.md"
ZONE = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
    "type": "Polygon", "coordinates": [[[141.18, 43.13], [141.23, 43.13], [141.23, 43.16], [141.18, 43.16], [141.18, 43.13]]]}}]}


def readme_spec() -> str:
    """Return the example spec of the README's section on on-demand services."""
    section = README.read_text(encoding="utf-8").split("## An on-demand service without GTFS", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def project(tmp_path):
    """A project folder with the README's spec and the polygon it asks for."""
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "areas").mkdir()
    (tmp_path / "areas" / "hamabe-zone.geojson").write_text(json.dumps(ZONE))
    path = tmp_path / "specs" / "feeds" / "hamabe-ondemand.yml"
    path.write_text(readme_spec(), encoding="utf-8")
    return tmp_path, path


def test_readme_spec_builds_a_flex_feed_without_gtfs_guru_errors(project, tmp_path):
    gtfs_guru = pytest.importorskip("gtfs_guru")
    from noriba.pipeline import ondemand_feed
    from warehouse.workspace import Workspace

    root, path = project
    spec = load_spec(path)
    assert spec.kind == "ondemand"
    feed, built = ondemand_feed(spec, Workspace(tmp_path / "home").ensure())
    names = set(zipfile.ZipFile(built.source.path).namelist())
    assert {"locations.geojson", "location_groups.txt", "location_group_stops.txt", "booking_rules.txt", "agency_jp.txt",
            "office_jp.txt", "translations.txt", "calendar.txt", "calendar_dates.txt", "feed_info.txt"} <= names
    result = gtfs_guru.validate(str(built.source.path), country_code="JP", date="2026-06-01")
    assert [f"{n.code} {n.file}: {n.context()}" for n in result.notices if n.severity == "ERROR"] == []


def test_readme_spec_with_a_misspelt_key_names_it(project):
    _, path = project
    path.write_text(readme_spec().replace("    phone: \"0123-45-0000\"\n    day_before", "    phnoe: \"0123-45-0000\"\n    day_before"),
                    encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    text = "\n".join(exc.value.problems)
    assert "ondemand.booking.phnoe" in text and "did you mean 'phone'" in text
    # the README's spec is a Japanese town's: its officer reads each problem in Japanese first
    assert ("ondemand.booking.phone: 電話番号がありません。電話で予約するなら予約先の番号を書いてください（例: \"0123-00-0000\"） / "
            "missing; booking by phone needs the number to call") in text


def test_ondemand_spec_with_a_source_is_told_to_remove_it(project):
    _, path = project
    path.write_text(readme_spec() + "source: {path: x.zip}\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"source: an on-demand spec is its own input; remove `source:`"):
        load_spec(path)


def test_run_publishes_the_feed_and_its_zones_and_the_same_spec_is_the_same_version(project, tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    _, path = project
    ws = Workspace(tmp_path / "home").ensure()
    first = run_feed(load_spec(path), ws, export=False, contracts=False)
    assert first["status"] == "new" and first["ondemand"]["zones"] == 3
    again = run_feed(load_spec(path), ws, export=False, contracts=False)
    assert again["status"] == "unchanged" and again["feed_version"] == first["feed_version"]
    path.write_text(readme_spec().replace('to: "17:00"}', 'to: "16:00"}'), encoding="utf-8")
    changed = run_feed(load_spec(path), ws, export=False, contracts=False)
    assert changed["status"] == "new" and changed["feed_version"] != first["feed_version"]
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.sql("SELECT feed_version FROM ondemand.services").fetchall() == [(changed["feed_version"],)]
        assert con.sql("SELECT max(end_s) FROM ondemand.windows WHERE service_id = 's_weekdays'").fetchall() == [(16 * 3600,)]
    finally:
        con.close()


def test_the_dag_steps_publish_the_zones_and_windows_too(project, tmp_path):
    from noriba import pipeline
    from warehouse.workspace import Workspace

    _, path = project
    spec = load_spec(path)
    ws = Workspace(tmp_path / "home").ensure()
    fetched = pipeline.fetch(spec, ws)
    assert fetched["source"].startswith(f"{path} (built into ")
    lake = pipeline.write_lake(ws, pipeline.stage(spec, ws, fetched))
    out = pipeline.publish_step(ws, lake)
    assert out["ondemand"]["status"] == "published" and out["ondemand"]["zones"] == 3
    again = pipeline.publish_step(ws, {**lake, "unchanged": True})
    assert again["status"] == "unchanged" and again["ondemand"] == {"status": "unchanged"}


def test_holiday_hours_outside_japan_are_refused_with_what_to_do(project):
    _, path = project
    text = readme_spec().replace("timezone: Asia/Tokyo", "timezone: Europe/Berlin").replace("profile: gtfs-jp", "profile: gtfs")
    path.write_text(text.replace('    - {days: saturday, from: "09:00", to: "12:00"}',
                                 '    - {days: holidays, from: "09:00", to: "12:00"}'), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.problems == [f"{path}: ondemand.hours[1].days: holidays: the public holidays are known for Japan "
                                  "(timezone: Asia/Tokyo); elsewhere list the days instead"]
