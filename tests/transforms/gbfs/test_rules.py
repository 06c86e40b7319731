import json

import pytest

from transforms.gbfs.parse import SnapshotReader
from transforms.gbfs.rules import RULES
from transforms.gbfs.spec import GbfsOptions, check_gbfs

T0 = 1700000000


def _doc(kind_key, rows, *, version="2.3", t=T0, ttl=60):
    return json.dumps({"last_updated": t, "ttl": ttl, "version": version, "data": {kind_key: rows}}).encode()


def _status(sid, bikes=3, docks=5, **extra):
    return {"station_id": sid, "num_bikes_available": bikes, "num_docks_available": docks, "is_installed": True,
            "is_renting": True, "is_returning": True, "last_reported": T0, **extra}


def _info(sid):
    return {"station_id": sid, "name": f"S{sid}", "lat": 35.0, "lon": 139.0}


def _read(files, **opts):
    r = SnapshotReader(GbfsOptions(**opts))
    for name, data in files:
        r.add(name, data)
    return r.finish()


def _codes(parsed):
    return {c for (c, _) in parsed.findings.counts}


def _notices(parsed, code):
    return [n for n in parsed.findings.notices if n.code == code]


def test_station_in_status_but_not_in_information_is_a_warning_with_file_and_field():
    p = _read([("station_information.json", _doc("stations", [_info("1")])),
               ("station_status.json", _doc("stations", [_status("1"), _status("9")]))])
    (n,) = _notices(p, "station_not_in_station_information")
    assert (n.severity, n.file, n.field, n.value) == ("WARNING", "station_status.json", "station_id", "9")


def test_station_status_without_any_station_information_is_an_error():
    p = _read([("station_status.json", _doc("stations", [_status("1")]))])
    assert _notices(p, "missing_station_information")[0].severity == "ERROR"


def test_vehicle_type_referenced_but_not_declared_is_a_notice_naming_it():
    types = [{"vehicle_type_id": "bike", "form_factor": "bicycle", "propulsion_type": "human"}]
    p = _read([("vehicle_types.json", _doc("vehicle_types", types)),
               ("station_information.json", _doc("stations", [_info("1")])),
               ("station_status.json", _doc("stations", [_status("1", vehicle_types_available=[
                   {"vehicle_type_id": "bike", "count": 1}, {"vehicle_type_id": "ebike", "count": 2}])]))])
    (n,) = _notices(p, "invalid_reference_to_vehicle_types_in_station_status")
    assert (n.value, n.field, n.file) == ("ebike", "vehicle_types_available.vehicle_type_id", "station_status.json")
    assert "not declared in vehicle_types.json" in n.message


def test_vehicle_type_referenced_without_any_vehicle_types_file_says_the_file_is_missing():
    bikes = [{"bike_id": "a", "lat": 52.4, "lon": 10.7, "is_reserved": False, "is_disabled": False, "vehicle_type_id": "scooter"}]
    p = _read([("free_bike_status.json", _doc("bikes", bikes))])
    (n,) = _notices(p, "invalid_reference_to_vehicle_types_in_vehicle_status")
    assert "no vehicle_types.json" in n.message and n.value == "scooter"


def test_official_schema_error_names_the_file_and_the_json_path_of_the_field():
    p = _read([("station_information.json", _doc("stations", [_info("1")])),
               ("station_status.json", _doc("stations", [_status("1", is_renting="yes")]))])
    (n,) = _notices(p, "schema_error")
    assert (n.file, n.field, n.value, n.severity) == ("station_status.json", "data.stations[0].is_renting", "yes", "ERROR")
    assert "GBFS 2.3 schema" in n.message and "boolean" in n.message


def test_gbfs_1_1_files_are_checked_against_the_1_1_schema_where_integer_booleans_are_valid():
    status = {"station_id": "1", "num_bikes_available": 0, "num_docks_available": 3, "is_installed": 1, "is_renting": 1,
              "is_returning": 1, "last_reported": T0}
    p = _read([("station_information.json", _doc("stations", [_info("1")], version="1.1")),
               ("station_status.json", _doc("stations", [status], version="1.1"))])
    assert "schema_error" not in _codes(p)
    assert p.tables["station_status"].column("is_renting").to_pylist() == [True]


def test_mixed_versions_are_each_checked_against_their_own_schema_and_reported_once():
    p = _read([("station_information.json", _doc("stations", [_info("1")], version="2.2")),
               ("station_status/1.json", _doc("stations", [_status("1")], version="2.1")),
               ("station_status/2.json", _doc("stations", [_status("1")], version="2.1", t=T0 + 60))])
    assert "version_mismatch" in _codes(p) and p.findings.counts[("version_mismatch", "INFO")] == 1
    (n,) = _notices(p, "no_schema_for_version")  # 2.1 is not bundled: said once, Noriba's own checks still ran
    assert n.file == "station_status/1.json" and n.value == "2.1"
    assert p.versions == {"station_information": "2.2", "station_status": "2.1"}
    assert "schema_error" not in _codes(p)  # station_information checked against the 2.2 schema, and valid


def test_file_without_version_is_read_as_the_spec_version_and_reported_once_per_kind():
    docs = [(f"station_status/{T0 + i}.json", json.dumps({"last_updated": T0 + i, "ttl": 60, "data": {
        "stations": [{"station_id": "1", "num_bikes_available": 0, "num_docks_available": 3, "is_installed": 1, "is_renting": 1,
                      "is_returning": 1, "last_reported": T0}]}}).encode()) for i in range(3)]
    p = _read([("station_information.json", _doc("stations", [_info("1")], version="1.1")), *docs], version="1.1")
    (n,) = _notices(p, "missing_version")
    assert "3 station_status file(s)" in n.message and "schema_error" not in _codes(p)


def test_file_that_is_not_json_is_one_quarantined_record_and_rows_add_up():
    p = _read([("station_information.json", _doc("stations", [_info("1")])),
               ("station_status/1.json", b"{not json"), ("station_status/2.json", _doc("stations", [_status("1"), _status("1")]))])
    assert "invalid_json" in _codes(p)
    assert (p.rows_in, p.rows_accepted, p.rows_quarantined) == (4, 3, 1)
    q = p.findings.quarantine_table().to_pylist()
    assert q[0]["file"] == "station_status/1.json" and q[0]["code"] == "invalid_json"


def test_station_status_without_id_or_with_negative_bikes_is_quarantined_with_its_raw_row():
    p = _read([("station_information.json", _doc("stations", [_info("1")])),
               ("station_status.json", _doc("stations", [_status("1"), {"num_bikes_available": 2}, _status("1", bikes=-1)]))])
    q = p.findings.quarantine_table().to_pylist()
    assert [(r["line"], r["code"]) for r in q] == [(2, "invalid_station_status"), (3, "invalid_station_status")]
    assert json.loads(q[0]["raw"]) == {"num_bikes_available": 2}
    assert p.rows_in == p.rows_accepted + p.rows_quarantined == 4  # 1 information + 3 status rows


def test_snapshot_without_last_updated_has_its_rows_quarantined():
    p = _read([("station_information.json", _doc("stations", [_info("1")])),
               ("station_status.json", json.dumps({"ttl": 0, "version": "2.3", "data": {"stations": [_status("1")]}}).encode())])
    assert p.findings.counts[("invalid_last_updated", "ERROR")] == 1 and p.rows_quarantined == 1


def test_vehicle_ids_and_rental_links_never_reach_tables_or_quarantine():
    secret = "161ac588-689f-4e9c-9ef6-4009b93dc3b2"
    bikes = [{"bike_id": secret, "lat": 52.4, "lon": 10.7, "is_reserved": False, "is_disabled": False,
              "rental_uris": {"ios": f"https://x/app?bike_id={secret}"}},
             {"bike_id": secret, "is_reserved": False, "is_disabled": False, "rental_uris": {"ios": f"https://x/?b={secret}"}},
             {"bike_id": secret, "lat": 52.4, "lon": 10.7, "is_reserved": False, "is_disabled": False}]
    p = _read([("free_bike_status.json", _doc("bikes", bikes))])
    everything = json.dumps([t.to_pylist() for t in p.tables.values()]) + json.dumps(p.findings.quarantine_table().to_pylist())
    everything += json.dumps([n.message + str(n.value) for n in p.findings.notices])
    assert secret not in everything
    assert p.rows_quarantined == 1 and "duplicate_vehicle_id" in _codes(p)


def test_vehicle_that_moved_but_kept_its_id_is_reported_once_as_not_rotated():
    def snap(t, lat):
        return _doc("bikes", [{"bike_id": "v1", "lat": lat, "lon": 10.7, "is_reserved": False, "is_disabled": False},
                              {"bike_id": "v2", "lat": 52.0, "lon": 10.7, "is_reserved": False, "is_disabled": False}], t=t)
    p = _read([(f"free_bike_status/{i}.json", snap(T0 + 60 * i, 52.0 + 0.01 * i)) for i in range(3)])
    (n,) = _notices(p, "vehicle_id_not_rotated")
    assert n.message.startswith("1 vehicle(s)")


def test_schema_sample_checks_first_every_nth_and_last_snapshot_of_a_series():
    files = [("station_information.json", _doc("stations", [_info("1")]))]
    files += [(f"station_status/{i:03}.json", _doc("stations", [_status("1", is_renting="no")], t=T0 + i)) for i in range(10)]
    p = _read(files, sample_every=4)
    checked = [f for f, c in zip(p.tables["files"].column("file").to_pylist(), p.tables["files"].column("schema_checked").to_pylist()) if c]
    assert checked == ["station_information.json", "station_status/000.json", "station_status/004.json", "station_status/008.json",
                       "station_status/009.json"]
    assert len(_notices(_read(files, schema_check="all"), "schema_error")) == 10


def test_every_gbfs_rule_has_a_japanese_why_and_fix():
    for r in RULES:
        assert r.why and r.why_ja and r.fix_ja, r.code
    assert len({r.code for r in RULES}) == len(RULES)


def test_gbfs_spec_section_reports_unknown_keys_and_versions_with_the_field():
    opts, problems = check_gbfs({"verison": "2.3", "schema_check": "some", "version": "2.9"}, where="specs/feeds/x.yml")
    assert opts is None
    assert "specs/feeds/x.yml: gbfs.verison: unknown key; did you mean 'version'?" in problems
    assert any(p.startswith("specs/feeds/x.yml: gbfs.version: '2.9' is not a GBFS version") for p in problems)
    assert "specs/feeds/x.yml: gbfs.schema_check: 'some'; use all or sample" in problems
    assert check_gbfs(None, where="x")[0] == GbfsOptions()


@pytest.mark.parametrize("version", ["1.1", "2.2", "2.3", "3.0"])
def test_bundled_schemas_are_the_official_draft_07_files(version):
    from jsonschema import Draft7Validator

    from transforms.gbfs.rules import SCHEMAS

    for path in sorted((SCHEMAS / f"v{version}").glob("*.json")):
        Draft7Validator.check_schema(json.loads(path.read_text()))


def test_gbfs_3_0_snapshots_with_rfc3339_times_and_num_vehicles_are_read_and_checked():
    t = "2023-11-14T22:13:20Z"  # = T0
    def doc(key, rows):
        return json.dumps({"last_updated": t, "ttl": 0, "version": "3.0", "data": {key: rows}}).encode()
    status = {"station_id": "1", "num_vehicles_available": 2, "num_docks_available": 3, "is_installed": True, "is_renting": True,
              "is_returning": True, "last_reported": t}
    vehicles = [{"vehicle_id": "secret-1", "lat": 35.0, "lon": 139.0, "is_reserved": False, "is_disabled": False, "last_reported": t},
                {"vehicle_id": "secret-2", "lat": 35.0, "lon": 139.0, "is_reserved": "no", "is_disabled": False}]
    p = _read([("station_information.json", _doc("stations", [_info("1")])), ("station_status.json", doc("stations", [status])),
               ("vehicle_status.json", doc("vehicles", vehicles))])
    assert p.tables["station_status"].to_pylist()[0]["num_bikes_available"] == 2
    assert p.tables["station_status"].column("snapshot_ts").to_pylist() == [T0]
    assert p.tables["vehicle_status"].column("last_reported").to_pylist() == [T0, None]
    (n,) = _notices(p, "schema_error")
    assert (n.file, n.field) == ("vehicle_status.json", "data.vehicles[1].is_reserved") and "GBFS 3.0 schema" in n.message
    assert "secret" not in json.dumps([t.to_pylist() for t in p.tables.values()])


def test_hostile_nesting_is_a_notice_never_a_crash():
    deep = b'{"last_updated": 1700000000, "ttl": 0, "version": "2.3", "data": {"stations": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    p = _read([("station_status.json", deep)])
    assert p.rows_in == p.rows_accepted + p.rows_quarantined
    assert _codes(p) & {"invalid_json", "schema_error", "invalid_station_status"}


def test_vehicle_at_a_station_missing_from_station_information_is_a_warning_with_file_and_field():
    bikes = [{"bike_id": "a", "station_id": "9", "is_reserved": False, "is_disabled": False}]
    p = _read([("station_information.json", _doc("stations", [_info("1")])), ("free_bike_status.json", _doc("bikes", bikes))])
    (n,) = _notices(p, "invalid_reference_to_station_in_vehicle_status")
    assert (n.severity, n.file, n.field, n.value) == ("WARNING", "free_bike_status.json", "station_id", "9")


def _statuses():
    """Stations of every shape the typed decoder takes: 1.x 0/1 booleans, a negative count, missing fields, 3.0 names."""
    return [_status("1", is_installed=1, is_renting=0, is_returning=1, num_bikes_disabled=2),
            _status("2", docks=-1, num_docks_disabled=None, vehicle_types_available=[{"vehicle_type_id": "bike", "count": 1}]),
            {"station_id": "3", "num_vehicles_available": 4, "num_vehicles_disabled": 1, "last_reported": "2023-11-14T22:13:20Z"},
            {"station_id": "4", "num_bikes_available": 0, "is_installed": 2}]


def test_typed_decoder_makes_the_rows_and_notices_the_general_reader_makes():
    info = ("station_information.json", _doc("stations", [_info("1"), _info("2"), _info("3")]))
    typed = _read([info, ("station_status.json", _doc("stations", _statuses()))], schema_check="all")
    # an extra key under data makes the typed decoder refuse the document: json.loads and the row-by-row reader read it
    extra = json.dumps({"last_updated": T0, "ttl": 60, "version": "2.3", "data": {"stations": _statuses(), "x": 1}}).encode()
    general = _read([info, ("station_status.json", extra)], schema_check="all")
    from transforms.gbfs.parse import _STATUS_DECODER

    _STATUS_DECODER.decode(_doc("stations", _statuses()))  # the first is read by the typed decoder, the second is not
    with pytest.raises(ValueError):
        _STATUS_DECODER.decode(extra)
    assert typed.tables["station_status"].to_pylist() == general.tables["station_status"].to_pylist()
    rows = typed.tables["station_status"].to_pylist()
    assert [r["is_renting"] for r in rows] == [False, True, None, None] and rows[1]["num_docks_available"] is None
    assert rows[2]["num_bikes_available"] == 4 and rows[2]["num_bikes_disabled"] == 1 and rows[2]["last_reported"] == T0
    assert sorted(typed.findings.counts.items()) == sorted(general.findings.counts.items())
    assert "station_not_in_station_information" in _codes(typed)  # station 4, found by both readers


def test_jsonschema_rs_and_jsonschema_agree_on_the_shared_systems_and_on_broken_files():
    from tests.conftest import shared
    from transforms.gbfs.discover import kind_from_content, kind_from_name
    from transforms.gbfs.rules import fast_validator, validator

    docs = []
    for system in ("boulder-bcycle-2022", "oslo-bysykkel-v2.3", "tier-wolfsburg-v2.3"):
        for path in sorted(shared("gbfs", system).rglob("*.json"))[:8]:
            doc = json.loads(path.read_bytes())
            docs.append((kind_from_name(path.name) or kind_from_content(doc), doc))
    broken = json.loads(_doc("stations", [_status("1", is_renting="yes"), _status("2", bikes=-1), {"num_bikes_available": 1}]))
    docs += [("station_status", broken), ("station_status", {"data": {}}), ("station_information", {"version": "2.3"})]
    compared = 0
    for kind, doc in docs:
        version = doc.get("version") or "1.1"
        if validator(version, kind) is None:
            continue
        assert fast_validator(version, kind).is_valid(doc) == (not list(validator(version, kind).iter_errors(doc))), (kind, version)
        compared += 1
    assert compared >= 15


def test_bundled_schemas_are_the_files_their_provenance_table_names():
    import hashlib
    import re

    from transforms.gbfs.rules import SCHEMAS

    rows = re.findall(r"^\| `(v[\d.]+/\w+\.json)` \| `\1` \| `([0-9a-f]{40})` \| `([0-9a-f]{64})` \| ([\d,]+) \|",
                      (SCHEMAS / "README.md").read_text(encoding="utf-8"), flags=re.M)
    files = sorted(p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.glob("v*/*.json"))
    assert sorted(r[0] for r in rows) == files
    for name, _commit, sha, size in rows:
        data = (SCHEMAS / name).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, int(size.replace(",", ""))), name


def test_numbers_too_big_for_64_bits_are_read_as_missing_or_quarantined_never_a_crash():
    huge = 10**20
    bikes = [{"bike_id": "a", "lat": 52.4, "lon": 10.7, "is_reserved": False, "is_disabled": False, "last_reported": huge}]
    p = _read([("station_information.json", _doc("stations", [{**_info("1"), "capacity": huge}])),
               ("station_status/1.json", _doc("stations", [_status("1", docks=huge, last_reported=huge)], ttl=huge)),
               ("station_status/2.json", _doc("stations", [_status("1"), _status("1", bikes=huge)], t=T0 + 60)),
               ("station_status/3.json", _doc("stations", [_status("1")], t=huge)),
               ("free_bike_status.json", _doc("bikes", bikes))])
    assert p.rows_in == p.rows_accepted + p.rows_quarantined == 6 and p.rows_quarantined == 2  # bikes=huge; no time
    status = p.tables["station_status"].to_pylist()
    assert (status[0]["num_docks_available"], status[0]["last_reported"]) == (None, None)
    assert p.tables["station_information"].column("capacity").to_pylist() == [None]
    assert p.tables["vehicle_status"].column("last_reported").to_pylist() == [None]
    q = p.findings.quarantine_table().to_pylist()
    assert sorted((r["file"], r["code"]) for r in q) == [("station_status/2.json", "invalid_station_status"),
                                                          ("station_status/3.json", "invalid_last_updated")]
