import json

import pytest

import transforms.gbfs.parse as P
from transforms.gbfs.spec import GbfsOptions

_STATUS = {"last_updated": 1700000000, "ttl": 60, "version": "2.3", "data": {"stations": [
    {"station_id": "1", "num_bikes_available": 3, "num_docks_available": 5, "is_installed": True, "is_renting": True,
     "is_returning": True, "last_reported": 1700000000, "note": "NOTE"}]}}


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("where", [b'"1"', b'"NOTE"'])  # a kept field (msgspec raises), a field nothing reads (msgspec skips it)
def test_station_status_that_is_not_utf8_is_quarantined_as_invalid_json(monkeypatch, native, where):
    if native and P._load_native() is None:
        pytest.skip("noriba_wire is not installed")
    monkeypatch.setattr(P, "NATIVE_STATUS", P._load_native() if native else None)
    data = json.dumps(_STATUS).encode().replace(where, where[:2] + b"\xff" + where[2:])
    r = P.SnapshotReader(GbfsOptions())
    r.add("station_status.json", data)
    p = r.finish()
    assert (p.rows_in, p.rows_accepted, p.rows_quarantined) == (1, 0, 1)
    assert [(q.file, q.code) for q in p.findings.quarantine] == [("station_status.json", "invalid_json")]
    assert p.tables["files"].column("status").to_pylist() == ["invalid_json"]
