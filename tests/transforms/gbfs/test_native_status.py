"""The C decoder of station_status batches (noriba_wire.gbfs_status) reads exactly as the Python path (NORIBA_GBFS_PURE=1):
the same tables, notices, quarantine and bookkeeping, on real snapshots and on hostile copies of them."""

import gc
import json
import random
import sys
import tracemalloc

import pytest

import transforms.gbfs.parse as P
from transforms.gbfs.discover import kind_from_name
from transforms.gbfs.spec import GbfsOptions
from tests.conftest import shared

NATIVE = P._load_native()
pytestmark = pytest.mark.skipif(NATIVE is None, reason="noriba_wire (with gbfs_status) is not installed")


def _read(files, *, native, batch=P.NATIVE_BATCH, threads=1, primed=None, **opts):
    saved = P.NATIVE_STATUS, P.NATIVE_BATCH, P.NATIVE_THREADS
    P.NATIVE_STATUS, P.NATIVE_BATCH, P.NATIVE_THREADS = (NATIVE if native else None), batch, threads
    try:
        r = P.SnapshotReader(GbfsOptions(**opts))
        if primed is not None:  # decoded ahead (as a first batch is while it is hashed), then added
            r.prime(primed)
        for name, data in files:
            r.add(name, data, sha256=f"sha-{name}")
        parsed = r.finish()
    finally:
        P.NATIVE_STATUS, P.NATIVE_BATCH, P.NATIVE_THREADS = saved
    return parsed, r


def _same(files, *, batch=P.NATIVE_BATCH, threads=1, primed=None, **opts):
    """Assert the C decoder and the Python path read ``files`` alike (the C decoder's files decoded ahead from ``primed``,
    if given); return the C decoder's result of the batch."""
    (a, ra), (b, rb) = (_read(files, native=False, **opts),
                        _read(files, native=True, batch=batch, threads=threads, primed=primed, **opts))
    for t in a.tables:
        assert a.tables[t].schema == b.tables[t].schema, t
        assert a.tables[t].to_pylist() == b.tables[t].to_pylist(), t
    assert a.findings.notices == b.findings.notices
    assert a.findings.quarantine == b.findings.quarantine
    assert a.findings.counts == b.findings.counts
    assert (a.rows_in, a.rows_accepted, a.rows_quarantined, a.versions) == (b.rows_in, b.rows_accepted, b.rows_quarantined, b.versions)
    for k in ("status_station_ids", "types_in_station_status", "missing_version", "versions_seen", "series_index", "accepted"):
        assert getattr(ra, k) == getattr(rb, k), k
    assert list(ra.status_station_ids.items()) == list(rb.status_station_ids.items())
    return NATIVE([d for n, d in files if kind_from_name(n) == "station_status"],
                  [n for n, d in files if kind_from_name(n) == "station_status"])


def _system(folder):
    files = [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*.json")]
    return sorted(files, key=lambda f: P.sort_key(f[0]))


@pytest.mark.parametrize("system", ["boulder-bcycle-2022", "oslo-bysykkel-v2.3"])
def test_every_shared_station_status_reads_alike_and_in_c(system):
    files = _system(shared("gbfs", system))
    results, rows, _ = _same(files)
    assert results and all(r is not None for r in results)  # every real snapshot is read in C
    assert rows == sum(len(json.loads(d)["data"]["stations"]) for n, d in files if kind_from_name(n) == "station_status")


def _bench_day():
    """The bench's Boulder day (bench/bench_gbfs.py boulder_day), rebuilt in memory."""
    folder = shared("gbfs", "boulder-bcycle-2022")
    real = [json.loads(p.read_bytes()) for p in sorted((folder / "station_status_2022-02-15_UTC").glob("*.json"))]
    t0 = real[0]["last_updated"]
    files = [("station_information.json", (folder / "station_information.json").read_bytes())]
    for k in range(1394):
        doc = json.loads(json.dumps(real[k % len(real)]))
        shift = t0 + k * 62 - doc["last_updated"]
        doc["last_updated"] += shift
        for st in doc["data"]["stations"]:
            st["last_reported"] += shift
        files.append((f"station_status_2022-02-15_UTC/{doc['last_updated']}.json", json.dumps(doc).encode()))
    return files


def test_bench_day_reads_alike_in_batches_and_two_threads():
    files = _bench_day()
    results, rows, _ = _same(files)
    assert rows == 62_730 and None not in results
    _same(files, batch=100, threads=2)


def _good():
    """Small well-formed snapshots of 1.x, 2.3 and 3.0."""
    v1 = {"ttl": 60, "last_updated": 1644886816, "data": {"stations": [
        {"is_returning": 1, "is_renting": 1, "is_installed": 1, "num_docks_available": 13, "num_bikes_available": 0,
         "last_reported": 1644886816, "num_bikes_available_types": {"electric": 0, "smart": 0, "classic": 0}, "station_id": "b1"},
        {"is_returning": 0, "is_renting": 1, "is_installed": 1, "num_docks_available": 5, "num_bikes_available": 10,
         "last_reported": 1644886000, "station_id": "b2"}]}}
    v2 = {"last_updated": 1732712025, "ttl": 15, "version": "2.3", "data": {"stations": [
        {"station_id": "5220", "is_installed": True, "is_renting": True, "is_returning": True, "last_reported": 1732712033,
         "num_vehicles_available": 1, "num_bikes_available": 1, "num_docks_available": 18,
         "vehicle_types_available": [{"vehicle_type_id": "bike", "count": 1}, {"vehicle_type_id": "ebike", "count": 0}]},
        {"station_id": "東京駅", "is_installed": True, "is_renting": False, "is_returning": True, "last_reported": 1732712000,
         "num_bikes_available": 3, "num_docks_available": 2, "num_bikes_disabled": 1, "num_docks_disabled": 0,
         "vehicle_types_available": [{"vehicle_type_id": "scooter", "count": 3}]}]}}
    v3 = {"last_updated": "2024-11-27T12:00:25+01:00", "ttl": 0, "version": "3.0", "data": {"stations": [
        {"station_id": "s1", "is_installed": True, "is_renting": True, "is_returning": True,
         "last_reported": "2024-11-27T11:00:00Z", "num_vehicles_available": 4, "num_docks_available": 1,
         "num_vehicles_disabled": 2, "vehicle_types_available": [{"vehicle_type_id": "bike", "count": 4}]},
        {"station_id": "s2", "is_installed": False, "is_renting": False, "is_returning": False,
         "last_reported": "2024-02-29T23:59:59-09:30", "num_vehicles_available": 0, "num_docks_available": 0}]}}
    return [v1, v2, v3]


def _mutants():
    """Hostile and unusual copies of the good snapshots (bytes)."""
    rnd = random.Random(16)
    out = []
    for doc in _good():
        raw = json.dumps(doc, ensure_ascii=False).encode()
        out.append(raw)
        out.append(json.dumps(doc, ensure_ascii=False, indent=2).encode())
        out.append(json.dumps(doc).encode())  # \u escapes for the Japanese text
        for cut in range(0, len(raw), max(1, len(raw) // 40)):
            out.append(raw[:cut])
        for _ in range(150):
            b = bytearray(raw)
            b[rnd.randrange(len(b))] = rnd.choice(b'{}[]",:0123456789-+.eEtfnul\\ \x00\x1f\x7f\x80\xc3\xff aZT')
            out.append(bytes(b))
        st = doc["data"]["stations"]

        def variant(fn):
            d = json.loads(json.dumps(doc))
            fn(d)
            out.append(json.dumps(d, ensure_ascii=False).encode())

        for key in ("num_bikes_available", "num_vehicles_available", "num_docks_available", "num_bikes_disabled",
                    "num_vehicles_disabled", "num_docks_disabled", "is_installed", "is_renting", "is_returning",
                    "last_reported", "station_id", "vehicle_types_available"):
            for value in (None, -1, 0, 1, 2, 7.0, 7.5, 1e300, 10**18, 10**19, -(10**19), 2**63, 2**63 - 1, -(2**63), True, False,
                          "3", "", "b\\1", "2024-11-27T11:00:00Z", "2024-11-27T11:00:00", "2024-11-27T11:00:00.5Z",
                          "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00+24:00", "2024-01-01 00:00:00Z",
                          "20240101T000000Z", "2024-01-01T00:00:00z", [], [{}], [{"vehicle_type_id": None}], [{"vehicle_type_id": 5}],
                          [1], {}, [{"vehicle_type_id": "x", "vehicle_type_id2": [[[]]]}], -62135596800, -62135596801,
                          253402300799, 253402300800):
                variant(lambda d, k=key, v=value: d["data"]["stations"][-1].__setitem__(k, v))
            variant(lambda d, k=key: d["data"]["stations"][0].pop(k, None))
        for key, value in (("last_updated", None), ("last_updated", "2024-11-27T12:00:25Z"), ("last_updated", "yesterday"),
                           ("last_updated", 1.5), ("last_updated", -62135596801), ("last_updated", True), ("ttl", -5),
                           ("ttl", "60"), ("ttl", None), ("ttl", 10**20), ("version", None), ("version", ""), ("version", 3),
                           ("version", "2\\3"), ("data", None), ("data", []), ("data", {}), ("data", {"stations": []}),
                           ("data", {"stations": None}), ("data", {"stations": [None]}), ("data", {"stations": [[]]}),
                           ("data", {"stations": st, "extra": 1}), ("data", {"bikes": st}), ("extra", {"a": [1, {"b": None}]}),
                           ("extra", "\\u00e9\\n"), ("station_id", 3)):
            variant(lambda d, k=key, v=value: d.__setitem__(k, v))
        variant(lambda d: d.pop("last_updated"))
        variant(lambda d: d.pop("data"))
        nest = {"deep": None}
        for _ in range(40):
            nest = {"deep": [nest]}
        variant(lambda d: d["data"]["stations"][0].__setitem__("x", nest))
        variant(lambda d: d.__setitem__("x", nest))
        variant(lambda d: d["data"]["stations"].append(5))
        variant(lambda d: d["data"]["stations"][0].__setitem__("station_id", 42))
        variant(lambda d: d["data"]["stations"][0].__setitem__("num_bikes_available", -3))
        # text changes after JSON is written: escapes, duplicate keys, literals json.loads alone takes, other encodings
        for a, b in ((b'"station_id"', b'"station\\u005fid"'), (b'"station_id": "', b'"station_id": "\\"'),
                     (b'"station_id": "', b'"station_id": "a\\/'), (b'"station_id": "', b'"station_id": "a\\n'),
                     (b'"station_id"', b'"station_id": "dup", "station_id"'), (b'"ttl"', b'"ttl": 1, "ttl"'),
                     (b'"data"', b'"data": {"stations": []}, "data"'), (b'"last_updated"', b'"last_updated": 1, "last_updated"'),
                     (b'"stations"', b'"stations": [], "stations"'), (b'"is_renting"', b'"is_renting": null, "is_renting"'),
                     (b'"vehicle_type_id"', b'"vehicle_type_id": "z", "vehicle_type_id"'), (b'{', b'{"nan": NaN, '),
                     (b'{', b'{"inf": -Infinity, '), (b'{', b'{"big": 1' + b"0" * 400 + b', '), (b'{', b'{"e": 1E+999, '),
                     (b'{', b'{"z": -0, "y": 01, '), (b': ', b':\x0b'), (b': ', b':\xc2\xa0'), (b'{', b'{"a": "\xed\xa0\x80", '),
                     (b'{', b'{"a": "\xf4\x90\x80\x80", '), (b'{', b'{"a": "\xc0\xaf", '), (b'{', b'{"a": "\\ud800", '),
                     (b'{', b'{"big": 123456789012345678901234567890, "f": 1e400, "g": -1.5E-3, "h": [true, false, null], '),
                     (b': 1', b': -0'), (b': 1', b': 1.0'), (b': 1', b': 1e0'), (b': 1', b': 01'), (b': 1', b': +1'),
                     (b': 1', b': 123456789012345678'), (b': 1', b': 1234567890123456789'), (b': 1', b': -123456789012345678'),
                     (b': 0', b': -0'), (b': 0', b': 0.0'), (b': 0', b': 00'), (b': true', b': True'), (b': true', b': tru'),
                     (b'}]}}', b'}]}} '), (b'}]}}', b'}],}}'), (b'}]}}', b'},]}}'), (b'}]}}', b'}]}'), (b', "', b',"'),
                     (b', "', b' ,\t\r\n "'), (b'[{', b'[ {'), (b'"data": {', b'"data":{ ')):
            out.append(raw.replace(a, b, 1))
            out.append(raw.replace(a, b))
        out += [b"\xef\xbb\xbf" + raw, raw + b" x", raw + b"\n\t ", b" \r\n" + raw, raw.decode().encode("utf-16"), b"",
                b"null", b"[]", b"{}", raw + raw]
    return out


def _hostile_batch(mutants: list[bytes], files: list, *, ok_every: int, types_every: int) -> list:
    """Return ``files`` followed by the mutants as station_status files, a good snapshot after every ``ok_every``-th and a
    vehicle_types file every ``types_every`` (in the middle of each run of that many)."""
    good = [json.dumps(d, ensure_ascii=False).encode() for d in _good()]
    for i, m in enumerate(mutants):
        files.append((f"status/station_status_{i:05d}.json", m))
        if i % ok_every == 0:
            files.append((f"status/station_status_{i:05d}_ok.json", good[i % 3]))
        if i % types_every == types_every // 2:
            files.append((f"vehicle_types_{i}.json", json.dumps({"last_updated": 5, "data": {"vehicle_types": [
                {"vehicle_type_id": "bike", "form_factor": "bicycle", "propulsion_type": "human"}]}}).encode()))
    return files


def test_hostile_copies_read_alike():
    mutants = _mutants()
    assert len(mutants) > 2400
    files = _hostile_batch(mutants, [("station_information.json", json.dumps({"last_updated": 1, "data": {"stations": [
        {"station_id": "b1", "name": "B1", "lat": 1.0, "lon": 2.0}]}}).encode())], ok_every=7, types_every=500)
    results, _, _ = _same(files)
    read = sum(r is not None for r in results)
    assert 500 < read < len(results)  # both paths are taken
    _same(files, batch=37, threads=2)
    _same(files, batch=1000, threads=2, version="2.3")
    for m in mutants[::3]:  # each alone too (the first snapshot of a series is always schema-checked)
        _same([("station_status.json", m)])


def test_every_good_snapshot_is_read_in_c_with_its_values():
    good = [json.dumps(d, ensure_ascii=False).encode() for d in _good()]
    results, rows, cols = NATIVE(good, ["a", "b", "c"])
    assert rows == 6
    assert [r[:4] for r in results] == [(1644886816, 60, None, 2), (1732712025, 15, "2.3", 2), (1732705225, 0, "3.0", 2)]
    assert [r[4] for r in results] == [["b1", "b2"], ["5220", "東京駅"], ["s1", "s2"]]
    assert [r[5] for r in results] == [[], ["bike", "ebike", "scooter"], []]  # "bike" was first seen in b


def test_repeated_calls_leak_nothing():
    good = [json.dumps(d, ensure_ascii=False).encode() for d in _good()]
    docs = good + _mutants()[:300]
    names = [f"n{i}" for i in range(len(docs))]
    refs = [sys.getrefcount(x) for x in docs + names]
    for _ in range(3):
        NATIVE(docs, names, 2)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(200):
            results, n, cols = NATIVE(docs, names, 1 + k % 2)
            del results, cols
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024
    # each argument holds the references it held (a leak adds some); the interpreter's shared objects (b"" and the
    # one-byte bytes some mutants are) are left out: other code of the process takes and drops references to them
    own = [i for i, n in enumerate(refs) if n < 1000]
    assert len(own) > len(refs) - 5
    now = [sys.getrefcount(x) for x in docs + names]
    assert [now[i] for i in own] == [refs[i] for i in own]


def test_bad_arguments_raise_not_crash():
    with pytest.raises(TypeError):
        NATIVE([b"{}"], [1])
    with pytest.raises(ValueError):
        NATIVE([b"{}"], [])
    with pytest.raises(TypeError):
        NATIVE([5], ["a"])
    assert NATIVE([], []) [:2] == ([], 0)
    good = json.dumps(_good()[1], ensure_ascii=False).encode()
    assert NATIVE([bytearray(good), good], ["\ud800", "ok"])[0][0] is None  # a name that is not UTF-8: the Python path
    assert NATIVE([bytearray(good), good], ["ok", "ok"])[0][0] is not None


def test_files_decoded_ahead_read_as_files_decoded_as_they_come():
    files = _bench_day()
    _same(files, primed=files)
    _same(files, batch=100, primed=files)
    r = P.SnapshotReader(GbfsOptions())
    r.prime(files)
    assert r._primed is not None and len(r._primed["data"]) == 1394
    for name, data in files:
        r.add(name, data)
    r.finish()
    assert r._primed is None  # all used


def test_a_file_left_out_after_decoding_ahead_drops_what_is_left_of_it():
    files = _bench_day()
    kept = files[:700] + files[701:]  # one snapshot skipped (its sha256 was seen): the rest is decoded as it comes
    _same(kept, primed=files)
    twice = files[:300] + [files[5]] + files[300:]  # another object in the middle
    _same(twice, primed=files)


def test_hostile_copies_decoded_ahead_read_alike():
    files = _hostile_batch(_mutants()[::5], [], ok_every=9, types_every=200)
    _same(files, primed=files)
    _same(files, batch=37, primed=files)
