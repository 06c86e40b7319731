"""Spec files are hostile input: bounded memory, every key and type checked, one clear message each."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SPECS = ROOT / "specs"
FEED = {"id": "my-bus", "kind": "gtfs", "name": "My bus", "source": {"path": "demo/inputs/minato-city-bus"},
        "schedule": "@daily", "timezone": "Asia/Tokyo", "profile": "gtfs-jp",
        "municipality": {"name": "みなと市", "code": "99001", "prefecture": "北海道"},
        "license": {"id": "CC-BY-4.0", "attribution": "みなと市"}, "tags": ["demo"]}
EXPORT = {"id": "my-region", "name": "My region", "feeds": {"ids": ["minato-city-bus"]},
          "license": {"id": "CC-BY-4.0", "attribution": "みなと市"}, "publisher": {"name": "みなと市", "lang": "ja"}}
TRIPS = {"id": "my-taxi", "kind": "trips", "source": {"path": "demo/inputs/minato-taxi"}, "timezone": "Asia/Tokyo",
         "trips": {"files": ["*.csv"], "columns": {"pickup_time": "t", "pickup_zone": "z"}, "zones": {"layer": "minato-districts"},
                   "privacy": {"k": 10}}}
ZONES = {"id": "my-zones", "kind": "zones", "source": {"path": "x.geojson"}, "zones": {"format": "geojson", "id_field": "id"}}


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Return a YAML flow list whose last item expands to width**levels strings ("billion laughs")."""
    items = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def _write(tmp_path: Path, folder: str, doc_text: str, name: str) -> Path:
    path = tmp_path / "specs" / folder / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc_text, encoding="utf-8")
    return path


def _problems(fn, *args, **kw) -> str:
    from noriba.specs import SpecError

    with pytest.raises(SpecError) as exc:
        fn(*args, **kw)
    assert all("Traceback" not in p for p in exc.value.problems)
    return "\n".join(exc.value.problems)


def _feed(**changes) -> dict:
    doc = copy.deepcopy(FEED)
    doc.update(changes)
    return doc


def _parse(doc: dict):
    from noriba.specs import parse_spec

    return parse_spec(doc, where="specs/feeds/my-bus.yml", root=ROOT)


# --------------------------------------------------------------- YAML limits


BOMB_RUNNER = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB: an expanded bomb needs tens of GB
    from pathlib import Path
    from noriba.specs import SpecError, load_spec
    from noriba.exports import load_export_spec
    path = Path(sys.argv[1])
    try:
        (load_export_spec if path.parent.name == "exports" else load_spec)(path, specs_dir=Path(sys.argv[2]))
    except SpecError as exc:
        print("\\n".join(exc.problems))
        sys.exit(3)
    print("accepted")
""")


@pytest.mark.parametrize("field", ["name", "tags", "timezone", "operator", "municipality.name", "license.attribution"])
def test_alias_bomb_in_a_feed_spec_is_refused_before_it_is_expanded(tmp_path, field):
    key, _, sub = field.partition(".")
    body = f"{key}: {alias_bomb()}" if not sub else f"{key}: {{{sub}: {alias_bomb()}}}"
    text = f"id: bomb\nkind: gtfs\nsource: {{path: x}}\n{body}\n"
    path = _write(tmp_path, "feeds", text, "bomb")
    out = subprocess.run([sys.executable, "-c", BOMB_RUNNER, str(path), str(SPECS)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 3, (out.returncode, out.stdout[-500:], out.stderr[-1500:])
    assert out.stdout.strip() == f"{path}: refused: the document holds more than 100,000 values once its aliases (*name) " \
                                 "are expanded; write the values out, or use fewer aliases"


def test_alias_bomb_in_an_export_spec_is_refused_before_it_is_expanded(tmp_path):
    path = _write(tmp_path, "exports", f"id: bomb\nname: {alias_bomb()}\nfeeds: {{ids: [a]}}\n", "bomb")
    out = subprocess.run([sys.executable, "-c", BOMB_RUNNER, str(path), str(SPECS)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 3, (out.returncode, out.stdout[-500:], out.stderr[-1500:])
    assert "refused: the document holds more than 100,000 values" in out.stdout


def test_merge_keys_that_double_at_each_level_are_refused(tmp_path):
    from transforms.specfile import load_yaml

    lines = ["a0: &a0 {x: 1, y: 2}"] + [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: 1}}" for i in range(1, 25)]
    path = tmp_path / "m.yml"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert "refused: the document holds more than" in _problems(load_yaml, path)


def test_small_anchors_and_aliases_keep_working(tmp_path):
    from noriba.specs import load_spec

    text = ("id: my-bus\nkind: gtfs\nsource: {path: demo/inputs/minato-city-bus}\noperator: &op みなと市交通局\n"
            "name: *op\nlicense: {id: CC-BY-4.0, attribution: *op}\ntags: &t [demo, minato]\n")
    spec = load_spec(_write(tmp_path, "feeds", text, "my-bus"), specs_dir=SPECS)
    assert (spec.name, spec.license["attribution"], spec.tags) == ("みなと市交通局", "みなと市交通局", ("demo", "minato"))


def test_an_alias_inside_itself_is_refused(tmp_path):
    from noriba.specs import load_spec

    text = "id: my-bus\nkind: gtfs\nsource: {path: x}\ntags: &t [a, *t]\n"
    assert "refused: an alias (*name) refers to a mapping or list that contains it" in _problems(
        load_spec, _write(tmp_path, "feeds", text, "my-bus"), specs_dir=SPECS)


def test_deep_nesting_is_refused(tmp_path):
    from noriba.specs import load_spec

    text = "id: my-bus\nkind: gtfs\nsource: {path: x}\ntags: " + "[" * 5000 + "]" * 5000 + "\n"
    assert "refused: values are nested more than 64 levels deep" in _problems(
        load_spec, _write(tmp_path, "feeds", text, "my-bus"), specs_dir=SPECS)


def test_a_spec_file_over_one_mebibyte_is_refused_unread(tmp_path):
    from noriba.specs import load_spec

    text = "id: my-bus\nkind: gtfs\nsource: {path: x}\nname: " + "x" * (1 << 20) + "\n"
    assert "larger than 1,048,576 bytes" in _problems(load_spec, _write(tmp_path, "feeds", text, "my-bus"), specs_dir=SPECS)


def test_every_yaml_reader_of_specs_uses_the_shared_loader():
    """No module reads spec YAML with its own loader (yaml.load / yaml.safe_load outside transforms/specfile.py)."""
    offenders = []
    for folder in ("noriba", "transforms", "warehouse", "dags"):
        for py in (ROOT / folder).rglob("*.py"):
            text = py.read_text(encoding="utf-8")
            if py.name != "specfile.py" and ("yaml.load(" in text or "yaml.safe_load(" in text or "YAML_LOADER" in text):
                offenders.append(str(py.relative_to(ROOT)))
    assert offenders == []


def test_expectations_and_schemas_are_read_through_the_limits(tmp_path):
    from transforms.contracts import load_bounds
    from transforms.schema import load_schema

    (tmp_path / "expectations").mkdir()
    (tmp_path / "schemas").mkdir()
    (tmp_path / "expectations" / "gtfs.yml").write_text(f"time_max: 1\nnon_negative: {alias_bomb()}\n", encoding="utf-8")
    (tmp_path / "schemas" / "gtfs.yml").write_text(f"tables: {{t: {{fields: {alias_bomb()}}}}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="refused: the document holds more than 100,000 values"):
        load_bounds("gtfs", tmp_path)
    assert "refused: the document holds more than 100,000 values" in _problems(load_schema, "gtfs", tmp_path)


# --------------------------------------------------------------- ids


@pytest.mark.parametrize("doc, field", [
    (_feed(id="my-bus\n"), "id"),
    ({**TRIPS, "id": "my-taxi\n"}, "id"),
    ({**ZONES, "id": "my-zones\n"}, "id"),
    ({**TRIPS, "trips": {**TRIPS["trips"], "zones": {"layer": "minato-districts\n"}}}, "trips.zones.layer"),
    ({**TRIPS, "trips": {**TRIPS["trips"], "municipalities": {"layer": "minato\n"}}}, "trips.municipalities.layer"),
    ({**TRIPS, "trips": {**TRIPS["trips"], "transit_gap": {"gtfs_feed": "minato-city-bus\n"}}}, "trips.transit_gap.gtfs_feed"),
])
def test_an_id_ending_in_a_newline_is_refused(doc, field):
    assert f"my-bus.yml: {field}: " in _problems(_parse, doc)


@pytest.mark.parametrize("changes, field", [
    ({"id": "my-region\n"}, "id"),
    ({"ingest": [{"path": "x.zip", "id": "town\n"}]}, "ingest[0].id"),
    ({"ingest": [{"glob": "*.zip", "id_prefix": "sf-\n"}]}, "ingest[0].id_prefix"),
    ({"feeds": {"ids": ["minato-city-bus\n"]}}, "feeds.ids[0]"),
])
def test_an_export_id_ending_in_a_newline_is_refused(changes, field):
    from noriba.exports import parse_export_spec

    text = _problems(parse_export_spec, {**EXPORT, **changes}, where="specs/exports/my-region.yml", root=ROOT)
    assert f"my-region.yml: {field}: " in text


# --------------------------------------------------------------- keys at every depth


@pytest.mark.parametrize("changes, expected", [
    ({"nmae": "x"}, "nmae: unknown key; did you mean 'name'?"),
    ({"municipality": {"name": "x", "cod": "1"}}, "municipality.cod: unknown key; did you mean 'code'?"),
    ({"license": {"idd": "CC0-1.0"}}, "license.idd: unknown key; did you mean 'id'?"),
    ({"source": {"path": "x", "retires": 2}}, "source.retires: unknown key; did you mean 'retries'?"),
])
def test_a_mistyped_key_of_a_feed_spec_is_refused_with_a_suggestion(changes, expected):
    assert f"specs/feeds/my-bus.yml: {expected}" in _problems(_parse, _feed(**changes))


@pytest.mark.parametrize("section, expected", [
    ({"colums": {"pickup_time": "t"}}, "trips.colums: unknown key; did you mean 'columns'?"),
    ({"time": {"zon": "utc"}}, "trips.time.zon: unknown key; did you mean 'zone'?"),
    ({"privacy": {"k": 10, "alow_points": True}}, "trips.privacy.alow_points: unknown key; did you mean 'allow_points'?"),
    ({"rules": {"max_speed_kph": 100}}, "trips.rules.max_speed_kph: unknown key; did you mean 'max_speed_kmh'?"),
    ({"zones": {"layr": "minato-districts"}}, "trips.zones.layr: unknown key; did you mean 'layer'?"),
    ({"transit_gap": {"gtfs_fed": "x"}}, "trips.transit_gap.gtfs_fed: unknown key; did you mean 'gtfs_feed'?"),
])
def test_a_mistyped_key_of_a_trips_spec_is_refused_with_a_suggestion(section, expected):
    doc = {**TRIPS, "trips": {**TRIPS["trips"], **section}}
    assert f"my-bus.yml: {expected}" in _problems(_parse, doc)


def test_a_mistyped_key_of_a_zones_spec_is_refused_with_a_suggestion():
    doc = {**ZONES, "zones": {"format": "geojson", "id_feild": "id", "lookup": {"path": "l.csv", "id_field": "i", "nme_field": "n"}}}
    text = _problems(_parse, doc)
    assert "zones.id_feild: unknown key; did you mean 'id_field'?" in text
    assert "zones.lookup.nme_field: unknown key; did you mean 'name_field'?" in text


@pytest.mark.parametrize("changes, expected", [
    ({"feeds": {"idss": ["a"]}}, "feeds.idss: unknown key; did you mean 'ids'?"),
    ({"publisher": {"nmae": "x"}}, "publisher.nmae: unknown key; did you mean 'name'?"),
    ({"license": {"id": "CC0-1.0", "atribution": "x"}}, "license.atribution: unknown key; did you mean 'attribution'?"),
    ({"ingest": [{"path": "x.zip", "id": "town", "timezon": "Asia/Tokyo"}]}, "ingest[0].timezon: unknown key; did you mean 'timezone'?"),
    ({"merge": {"stop_distance": 30}}, "merge.stop_distance: unknown key; did you mean 'stop_distance_m'?"),
    ({"formts": ["gtfs"]}, "formts: unknown key; did you mean 'formats'?"),
])
def test_a_mistyped_key_of_an_export_spec_is_refused_with_a_suggestion(changes, expected):
    from noriba.exports import parse_export_spec

    text = _problems(parse_export_spec, {**EXPORT, **changes}, where="specs/exports/my-region.yml", root=ROOT)
    assert f"specs/exports/my-region.yml: {expected}" in text


def test_a_mistyped_key_of_a_timetable_spec_is_refused_with_a_suggestion():
    from tests.transforms.timetable.helpers import CONFIG

    tt = copy.deepcopy(CONFIG)
    tt["agency"]["nmae"] = "x"
    tt["layout"]["stop_colum"] = "A"
    tt["markers"] = {"pas": ["レ"]}
    doc = {"id": "t", "kind": "timetable", "source": {"path": "demo/inputs/minato-community-timetable"}, "timetable": tt}
    text = _problems(_parse, doc)
    for expected in ("timetable.agency.nmae: unknown key; did you mean 'name'?",
                     "timetable.layout.stop_colum: unknown key; did you mean 'stop_column'?",
                     "timetable.markers.pas: unknown key; did you mean 'pass'?"):
        assert expected in text


# --------------------------------------------------------------- types


@pytest.mark.parametrize("changes, expected", [
    ({"name": ["a", "b"]}, "name: found a list; expected text"),
    ({"tags": "demo"}, "tags: found text 'demo'; expected a list of text"),
    ({"tags": ["demo", {"a": 1}]}, "tags[1]: found a mapping; expected text"),
    ({"timezone": 9}, "timezone: found a number 9; expected text"),
    ({"municipality": "みなと市"}, "municipality: found text 'みなと市'; expected a mapping"),
    ({"license": {"id": ["CC0"]}}, "license.id: found a list; expected text"),
    ({"source": {"url": 5}}, "source.url: found a number 5; expected text"),
    ({"source": {"path": "x", "retries": -1}}, "source.retries: found a number -1; expected a whole number from 1 to 10"),
    ({"source": {"path": "x", "max_bytes": "big"}}, "source.max_bytes: found text 'big'; expected a whole number"),
    ({"source": {"path": "x", "timeout_s": True}}, "source.timeout_s: found true/false True; expected a number"),
])
def test_a_value_of_the_wrong_type_is_reported_with_what_was_found_and_expected(changes, expected):
    text = _problems(_parse, _feed(**changes))
    assert f"specs/feeds/my-bus.yml: {expected}" in text
    assert len(text.splitlines()) == 1, text


def test_wrong_types_in_a_trips_section_are_reported_once_each():
    doc = {**TRIPS, "trips": {**TRIPS["trips"], "privacy": {"k": "ten"}, "rules": {"max_speed_kmh": "fast"},
                              "files": "a.csv", "time": "utc"}}
    problems = _problems(_parse, doc).splitlines()
    assert any("trips.privacy.k: found text 'ten'; expected a whole number of at least 2" in p for p in problems)
    assert any("trips.rules.max_speed_kmh: found text 'fast'; expected a number" in p for p in problems)
    assert any("trips.time: found text 'utc'; expected a mapping" in p for p in problems)
    assert len(problems) == 3, problems  # files: a single glob is accepted as a list of one


def _committed() -> list[tuple[str, dict]]:
    out = []
    for folder in ("feeds", "trips", "exports"):
        for p in sorted((SPECS / folder).glob("*.yml")):
            out.append((folder, yaml.load(p.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)))  # test-side copy
    return out


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _replaced(doc, path, new):
    doc = copy.deepcopy(doc)
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = new
    return doc


WRONG = [7, -1, 2.5, True, None, "x", ["x", 1], {"k": "v"}, [{"a": []}]]


def test_any_value_of_any_committed_spec_replaced_by_any_type_gives_a_spec_error_or_a_spec():
    """Generated: every field of every committed spec, replaced by each wrong type: no other exception escapes."""
    from noriba.exports import parse_export_spec
    from noriba.specs import FeedSpec, SpecError

    tried = 0
    for folder, doc in _committed():
        parse = parse_export_spec if folder == "exports" else __import__("noriba.specs", fromlist=["parse_spec"]).parse_spec
        for path in _paths(doc):
            if not path or path in (("kind",), ("source",), ("source", "path"), ("source", "files")):
                continue  # a different kind or source reads other files: covered by the other keys
            for new in WRONG:
                tried += 1
                try:
                    spec = parse(_replaced(doc, path, new), where=f"{folder}.yml", root=ROOT)
                except SpecError as exc:
                    assert exc.problems and all(p.startswith(f"{folder}.yml") for p in exc.problems)
                else:
                    assert spec.id
    assert tried > 2000


# --------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", ["every day", "@dayly", "61 * * * *", "", "* * *", 5])
def test_a_schedule_airflow_cannot_parse_is_refused(schedule):
    assert "specs/feeds/my-bus.yml: schedule: " in _problems(_parse, _feed(schedule=schedule))


@pytest.mark.parametrize("schedule", [None, "@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly",
                                      "@quarterly", "@yearly", "0 5 * * *", "*/15 6-22 * * 1-5"])
def test_schedules_airflow_accepts_are_accepted(schedule):
    assert _parse(_feed(schedule=schedule)).schedule == schedule


def test_the_message_for_a_bad_schedule_says_what_is_accepted():
    text = _problems(_parse, _feed(schedule="every day"))
    assert text == ("specs/feeds/my-bus.yml: schedule: 'every day' is not a cron expression (e.g. '0 5 * * *': "
                    "minute hour day month weekday) or one of @once, @continuous, @hourly, @daily, @weekly, @monthly, "
                    "@quarterly, @yearly, or null (run when triggered)")


def test_a_trips_spec_on_zone_layers_needs_a_clock_schedule_not_once():
    assert "schedule: '@once'" in _problems(_parse, {**TRIPS, "schedule": "@once"})


# --------------------------------------------------------------- committed specs and layers


def test_every_committed_spec_still_loads():
    from noriba.exports import load_export_specs
    from noriba.specs import load_specs, load_trip_specs

    assert len(load_specs()) == len(list((SPECS / "feeds").glob("*.yml")))
    assert len(load_trip_specs()) == len(list((SPECS / "trips").glob("*.yml")))
    assert len(load_export_specs()) == len(list((SPECS / "exports").glob("*.yml")))


def test_transforms_import_nothing_from_noriba():
    import re

    upward = re.compile(r"^\s*(from noriba(\.| import)|import noriba(\.|\s*$|\s+as\b|,))", re.M)  # noriba_wire is not noriba
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "transforms").rglob("*.py") if upward.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    assert upward.search("    from noriba.specs import x\n") and upward.search("import noriba\n")
    assert not upward.search("        import noriba_wire\n")


@pytest.mark.parametrize("field", ["id", "kind", "timezone", "encoding", "profile", "schedule"])
@pytest.mark.parametrize("value", ["\x00", "a" * 5000, "../../etc/passwd"])
def test_a_hostile_text_value_gets_one_short_message(field, value):
    problems = _problems(_parse, _feed(**{field: value})).splitlines()
    assert len(problems) == 1 and problems[0].startswith(f"specs/feeds/my-bus.yml: {field}: ")
    assert len(problems[0]) < 400


@pytest.mark.parametrize("content", ["[1, 2]", '{"type": "FeatureCollection", "features": []}', '"x"', '{"type": 5}'])
def test_an_area_file_that_is_not_geojson_is_one_message(tmp_path, content):
    from noriba.exports import parse_export_spec

    (tmp_path / "area.geojson").write_text(content, encoding="utf-8")
    text = _problems(parse_export_spec, {**EXPORT, "area": {"polygon": "area.geojson"}}, where="my-region.yml", root=tmp_path)
    assert text.startswith("my-region.yml: area.polygon: area.geojson: ") and len(text.splitlines()) == 1
