"""The C hot path (native/noriba_wire) and the pure Python path of transforms/gtfs_rt give the same lake, and hostile
bytes never crash the extension nor make it read what upb would refuse."""

from __future__ import annotations

import random

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from tests.conftest import shared
from transforms.gtfs_rt import parse
from transforms.gtfs_rt.parse import HourParser, SnapshotError, split_message

nw = pytest.importorskip("noriba_wire")


def _captures() -> list[bytes]:
    root = shared("gtfs", "rt")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".pb", ".pbf", ".protobuf", "")
                   and p.name != "PROVENANCE.txt")
    return [p.read_bytes() for p in found]


def _tables(snapshots: list[tuple[str, bytes]], *, native: bool, monkeypatch) -> dict:
    """Return ({table: rows as Python values}, [add() results]) of one HourParser fed ``snapshots`` (part, bytes)."""
    monkeypatch.setattr(parse, "NATIVE", nw if native else None)
    p = HourParser()
    added = [p.add(data, part=part, file=f"{k}.pb") for k, (part, data) in enumerate(snapshots)]
    return {name: t.to_pylist() for name, t in p.finish().items()}, added


def _bus_hour(n: int, p: float = 1 / 3, seed: int = 15) -> list[bytes]:
    """Return ``n`` snapshots of the New York bus capture as bench/bench_rt.py's make_hour perturbs them."""
    rng = random.Random(seed)
    m = pb.FeedMessage.FromString(shared("gtfs", "rt", "nyct-subway-2019", "feed_buses_weekend.protobuf").read_bytes())
    out = []
    for k in range(n):
        m.header.timestamp = 1_766_347_200 + 20 * k
        if k:
            for e in m.entity:
                if rng.random() >= p:
                    continue
                tu = e.trip_update
                change = rng.randint(-30, 60)
                tu.timestamp = m.header.timestamp - rng.randint(0, 19)
                tu.delay = tu.delay + change
                for s in tu.stop_time_update:
                    if s.HasField("arrival"):
                        s.arrival.time += change
                    if s.HasField("departure"):
                        s.departure.time += change
        out.append(m.SerializeToString())
    return out


def test_both_paths_give_the_same_tables_on_every_real_capture(monkeypatch):
    snaps = [(part, d) for d in _captures() for part in ("combined", "combined", "trip_updates")]
    assert _tables(snaps, native=True, monkeypatch=monkeypatch) == _tables(snaps, native=False, monkeypatch=monkeypatch)


def test_both_paths_give_the_same_tables_on_a_bench_made_hour(monkeypatch, tmp_path):
    snaps = [("trip_updates", d) for d in _bus_hour(6)]
    calls = []
    real = nw.trip_updates
    monkeypatch.setattr(nw, "trip_updates", lambda *a: calls.append(r := real(*a)) or r)
    native, added = _tables(snaps, native=True, monkeypatch=monkeypatch)
    assert calls and all(r is not None for r in calls), "every snapshot of the hour is read by the extension"
    assert (native, added) == _tables(snaps, native=False, monkeypatch=monkeypatch)
    assert len(native["rt_stop_time_updates"]) > 62_928


def _mutations(data: bytes, rng: random.Random, n: int):
    """Yield ``n`` damaged copies of ``data``: cut short, bits flipped, bytes overwritten, random bytes spliced in."""
    for _ in range(n):
        b = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0 and b:
            del b[rng.randrange(len(b)):]
        elif kind == 1 and b:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == 2 and b:
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        else:
            at = rng.randrange(len(b) + 1)
            b[at:at] = rng.randbytes(rng.randint(1, 12))
        yield bytes(b)


def _row_by_upb(eb: bytes) -> tuple[str, tuple | None]:
    """Return (entity id, the trip update's row as HourParser._entity builds it) of entity bytes, read by upb."""
    e = pb.FeedEntity.FromString(eb)
    if not e.HasField("trip_update"):
        return e.id, None
    tu = e.trip_update
    trip = parse._trip(tu.trip)
    return e.id, (*trip, parse._s(tu.vehicle.id), parse._s(tu.vehicle.label), tu.timestamp if tu.HasField("timestamp") else None,
                  tu.delay if tu.HasField("delay") else None, len(tu.stop_time_update))


def test_hostile_entities_never_crash_and_what_the_extension_reads_upb_reads_the_same():
    rng = random.Random(7)
    seeds = parse._seeds()
    ents = [eb for d in _captures() for eb in split_message(d)[1]]
    tus = [eb for eb in ents if pb.FeedEntity.FromString(eb).HasField("trip_update")]
    accepted = 0
    for eb in rng.sample(tus, min(len(tus), 300)):
        for bad in _mutations(eb, rng, 12):
            z = np.zeros(1, dtype=np.int64)
            got = nw.trip_updates(bad, z, np.array([len(bad)], dtype=np.int64), z, parse._TRIP_REL_NAMES, seeds)
            if got is None:
                continue
            accepted += 1
            infos, k, start, length, h1, h2, longs = got
            try:
                want = _row_by_upb(bad)
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"the extension read bytes upb refuses ({exc}): {bad.hex()}")
            assert infos == [want], bad.hex()
            stus = pb.FeedEntity.FromString(bad).trip_update.stop_time_update
            starts, lengths = np.frombuffer(start, np.int64), np.frombuffer(length, np.int64)
            assert [pb.TripUpdate.StopTimeUpdate.FromString(bad[s:s + n]) for s, n in zip(starts, lengths)] == list(stus)
    assert accepted > 500  # the mutations that stay well-formed (a changed time, stop id, delay) are read natively


def test_hostile_snapshots_never_crash_split_and_it_agrees_with_split_message():
    rng = random.Random(11)
    for data in _captures():
        for bad in [data, *_mutations(data, rng, 150)]:
            got = nw.split(bad)
            try:
                want = split_message(bad)
            except SnapshotError:
                assert got is None
                continue
            if got is not None:
                header, ents, starts, ends = got
                assert (header, ents) == want
                assert [bad[s:e] for s, e in zip(np.frombuffer(starts, np.int64), np.frombuffer(ends, np.int64))] == ents


def test_hostile_stop_time_updates_never_crash_the_decoder_and_it_agrees_with_numpy(monkeypatch):
    rng = random.Random(5)
    stus = [s.SerializeToString() for d in _captures() for e in pb.FeedMessage.FromString(d).entity
            for s in e.trip_update.stop_time_update]
    stus = rng.sample(stus, 400)
    bad = [m for s in stus for m in _mutations(s, rng, 10)]
    lens = np.array([len(b) for b in bad], dtype=np.int64)
    ends = np.cumsum(lens)
    starts = ends - lens
    buf = np.frombuffer(b"".join(bad) + bytes(16), dtype=np.uint8)
    bi = np.zeros(len(bad), dtype=np.int32)
    assert nw.decode_stus([buf], bi, starts, ends, parse._STU_REL_INDEX) is None  # some are damaged: the chunk goes to numpy
    agreed = 0
    for k in range(0, len(bad), 7):  # alone, each one the extension reads decodes as numpy's decoder does
        s, e = starts[k:k + 1], ends[k:k + 1]
        got = nw.decode_stus([buf], bi[:1], s, e, parse._STU_REL_INDEX)
        if got is None:
            continue
        native = [c.to_pylist() for c in parse._native_columns(got, 1)]
        monkeypatch.setattr(parse, "NATIVE", None)
        pure = [c.to_pylist() for c in parse._decode_stus(buf, s, e)]
        monkeypatch.setattr(parse, "NATIVE", nw)
        assert native == pure, bad[k].hex()
        agreed += 1
    assert agreed > 100


def test_hostile_snapshots_give_the_same_tables_and_quarantine_on_both_paths(monkeypatch):
    rng = random.Random(3)
    hour = _bus_hour(2)
    small = [d for d in _captures() if len(d) < 150_000]
    snaps = [("trip_updates", hour[0]), *[("trip_updates", m) for m in _mutations(hour[1], rng, 25)]]
    for d in small:
        snaps += [("combined", d), *[("combined", m) for m in _mutations(d, rng, 40)]]
    assert _tables(snaps, native=True, monkeypatch=monkeypatch) == _tables(snaps, native=False, monkeypatch=monkeypatch)


def test_nothing_but_the_buffers_given_is_read():
    """Ranges outside the buffers given are an error, not a read out of bounds."""
    z = np.zeros(1, dtype=np.int64)
    with pytest.raises(IndexError):
        nw.trip_updates(b"\x0a\x01a", z, np.array([10], dtype=np.int64), z, parse._TRIP_REL_NAMES, parse._seeds())
    with pytest.raises(IndexError):
        nw.decode_stus([b"\x08\x01"], np.zeros(1, np.int32), z, np.array([3], dtype=np.int64), parse._STU_REL_INDEX)
    with pytest.raises(IndexError):
        nw.decode_stus([b"\x08\x01"], np.ones(1, np.int32), z, np.array([2], dtype=np.int64), parse._STU_REL_INDEX)
    with pytest.raises(ValueError):
        nw.trip_updates(b"", z, z, z, parse._TRIP_REL_NAMES, b"short")
    assert nw.split(b"\x12\x80") is None and nw.split(b"") == (None, [], b"", b"")


def test_the_pure_path_is_taken_when_asked(monkeypatch):
    import subprocess
    import sys

    code = "from transforms.gtfs_rt import parse; print(parse.NATIVE is None)"
    for env, want in (({"NORIBA_RT_PURE": "1"}, "True"), ({"NORIBA_RT_PURE": "0"}, "False")):
        out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env}, capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == want


def test_a_snapshot_buffer_changed_after_it_was_added_does_not_change_the_rows():
    data = _bus_hour(1)[0]
    want = HourParser()
    want.add(data, part="trip_updates")
    buf = bytearray(data)
    got = HourParser()
    got.add(buf, part="trip_updates")
    buf[:] = bytes(len(buf))  # the caller reuses its buffer before the rows are decoded
    assert got.finish()["rt_stop_time_updates"].to_pylist() == want.finish()["rt_stop_time_updates"].to_pylist()


@pytest.mark.parametrize("native", [True, False])
def test_a_value_past_its_columns_type_is_stored_as_null_not_a_crash(monkeypatch, native):
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add(id="x")
    e.trip_update.trip.trip_id = "t"
    e.trip_update.trip.direction_id = 2**32 - 1  # uint32 in the protobuf, int32 in the lake
    e.trip_update.timestamp = 2**64 - 1  # uint64 in the protobuf, int64 in the lake
    e.trip_update.delay = 5
    tables, added = _tables([("trip_updates", m.SerializeToString())], native=native, monkeypatch=monkeypatch)
    assert added == [True]
    [row] = tables["rt_trip_updates"]
    assert (row["direction_id"], row["timestamp"], row["delay"], row["trip_id"]) == (None, None, 5, "t")


def _mixed_hour() -> list[tuple[str, bytes]]:
    """Return a bench-made hour in which the extension gives way to the Python path now and then: a header given twice
    (split refuses it: split_message reads it), a vehicle among the changed entities (trip_updates refuses it), an entity
    given twice, an entity whose bytes come back after a snapshot without them."""
    hour = _bus_hour(12)
    header = pb.FeedMessage.FromString(hour[0]).header.SerializeToString()
    out = []
    for k, d in enumerate(hour):
        vehicle = pb.FeedMessage()
        vehicle.entity.add(id="bus-1").vehicle.vehicle.id = str(k)  # changed in each snapshot
        vehicle_b = vehicle.SerializePartialToString()  # entities only
        if k in (3, 4, 9):
            d = d + b"\x0a" + bytes([len(header)]) + header  # the header again: split() gives way to split_message
        if k in (5, 6, 11):
            d = d + vehicle_b  # a vehicle: trip_updates() gives way to upb
        if k == 7:
            ents = split_message(d)[1]
            d = d + parse._field2(ents[0]) + parse._field2(ents[5])  # two duplicates
        if k == 8:
            ents = split_message(d)[1]
            d = b"\x0a" + bytes([len(header)]) + header + b"".join(map(parse._field2, ents[10:]))  # ten gone, back next
        out.append(("trip_updates", d))
    return out


def test_both_paths_give_the_same_tables_when_the_extension_gives_way_in_the_middle_of_an_hour(monkeypatch):
    snaps = _mixed_hour()
    splits, reads = [], []
    real_split, real_read = nw.split, nw.trip_updates
    monkeypatch.setattr(nw, "split", lambda *a: splits.append(r := real_split(*a)) or r)
    monkeypatch.setattr(nw, "trip_updates", lambda *a: reads.append(r := real_read(*a)) or r)
    native, added = _tables(snaps, native=True, monkeypatch=monkeypatch)
    assert all(added)
    assert [k for k, r in enumerate(splits) if r is None] == [3, 4, 9]
    assert sum(r is None for r in reads) == 3 and sum(r is not None for r in reads) == 6
    assert (native, added) == _tables(snaps, native=False, monkeypatch=monkeypatch)


def test_bad_state_arguments_are_an_error_not_a_read_out_of_bounds():
    z, one = np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)
    with pytest.raises(IndexError):  # a range past its data
        nw.unchanged_pos(b"ab", z, np.array([3], dtype=np.int64), b"", b"", b"", [], [], [], 0)
    with pytest.raises(IndexError):
        nw.unchanged_pos(b"", b"", b"", b"ab", one, z, [None], [], [], 0)
    with pytest.raises(ValueError):  # one state per previous entity
        nw.unchanged_pos(b"", b"", b"", b"ab", z, one, [], [], [], 0)
    st = parse._Entity(5, "e")  # its version past v_count
    with pytest.raises(IndexError):
        nw.unchanged_pos(b"a", z, one, b"a", z, one, [st], [1], [None], 0)
    with pytest.raises(ValueError):  # one hash per previous entity
        nw.unchanged_pos(b"a", z, one, b"a", z, one, [st], [1], [None], 0, b"")
    with pytest.raises(ValueError):
        nw.store_trips([("e",)], [], [], {}, {}, parse._Entity, 0, [], [], [], [], [], [], [], "p")
    with pytest.raises(ValueError):
        nw.store_trips([("e", (1, 2))], [], [], {}, {}, parse._Entity, 0, [], [], [], [], [], [], [], "p")
    assert nw.strings(["a", 1]) is None and nw.strings(["\ud800"]) is None and nw.strings(("a",)) is None
    assert nw.ints([1, "a"], 8) is None and nw.ints([2**31], 4) is None and nw.ints([2**63], 8) is None
    assert nw.ints([True], 8) is None
    with pytest.raises(ValueError):
        nw.ints([1], 2)


def test_columns_built_in_c_equal_the_python_ones(monkeypatch):
    import pyarrow as pa

    values = ["a", None, "東京駅", "", "x" * 300, None] * 7
    ints = [0, None, -5, 2**31 - 1, -(2**31), None] * 7
    got = (parse._strings(values), parse._col(ints, pa.int32()), parse._col(ints, pa.int64()))
    monkeypatch.setattr(parse, "NATIVE", None)
    assert got == (parse._strings(values), parse._col(ints, pa.int32()), parse._col(ints, pa.int64()))


def test_the_extension_leaks_no_references(monkeypatch):
    import sys

    snaps = _mixed_hour()[:8]
    _tables(snaps, native=True, monkeypatch=monkeypatch)
    probes = [d for _, d in snaps] + [parse._Entity, parse._TRIP_REL_NAMES]
    before = [sys.getrefcount(x) for x in probes]
    blocks = sys.getallocatedblocks()
    for _ in range(3):
        _tables(snaps, native=True, monkeypatch=monkeypatch)
    assert [sys.getrefcount(x) for x in probes] == before
    assert sys.getallocatedblocks() - blocks < 10_000  # three hours of ~30,000 rows each: nothing kept
    s, i = "abc", 12345678901
    rs, ri = sys.getrefcount(s), sys.getrefcount(i)
    for _ in range(1000):
        nw.strings([s, None, s])
        nw.ints([i, None], 8)
        nw.ints([i, "x"], 8)
    assert (sys.getrefcount(s), sys.getrefcount(i)) == (rs, ri)


def test_unchanged_entities_found_by_position_are_those_a_dict_of_their_bytes_finds():
    """unchanged_pos against the plain rule (the first entity with given bytes; a later one is a duplicate), on random
    snapshots with many equal, overlapping, empty and same-length entities, and ranges or states that do not fit."""
    rng = random.Random(7)
    for _ in range(300):
        data_p = bytes(rng.choice(b"ab\x00") for _ in range(rng.randrange(0, 40)))
        data = bytes(rng.choice(b"ab\x00") for _ in range(rng.randrange(0, 40)))

        def ranges(d):
            n = rng.randrange(0, 12)
            st = [rng.randrange(0, len(d) + 1) for _ in range(n)]
            en = [rng.randrange(s, min(len(d), s + 9) + 1) for s in st]
            return np.array(st, dtype=np.int64), np.array(en, dtype=np.int64)

        pst, pen = ranges(data_p)
        est, een = ranges(data)
        pkeys = [data_p[a:b] for a, b in zip(pst, pen)]
        pstates = [parse._Entity(k, "e", counts=(0, 1, k, 0, 0)) if pkeys.index(kb) == k and rng.random() < 0.9 else None
                   for k, kb in enumerate(pkeys)]
        first = {}
        for st, kb in zip(pstates, pkeys):
            first.setdefault(kb, st)
        v_count, v_last = [1] * len(pkeys), [0] * len(pkeys)
        got = nw.unchanged_pos(data, est, een, data_p, pst, pen, pstates, v_count, v_last, 99,
                               *([None] if rng.random() < 0.5 else []))
        changed, dups, seen, hits = [], [], set(), []
        for i, (a, b) in enumerate(zip(est, een)):
            kb = data[a:b]
            if kb in seen:
                dups.append(i)
            elif first.get(kb) is None:
                changed.append(i)
            else:
                hits.append(first[kb])
            seen.add(kb)
        assert got[0] == changed and got[1] == dups and got[2] == [st.v for st in hits]
        assert got[5] == [0, len(hits), sum(st.v for st in hits), 0, 0]
        assert all(v_count[st.v] == 2 and v_last[st.v] == 99 for st in hits)
        again = nw.unchanged_pos(data, est, een, data, est, een, got[6], [1] * len(pkeys), [0] * len(pkeys), 0, got[7])
        assert again[0] == [i for i in range(len(est)) if i not in dups and got[6][i] is None]  # the hashes given back
        assert again[1] == dups and again[2] == got[2]
        bad = een.copy()
        if len(bad):
            bad[-1] = len(data) + 1
            with pytest.raises(IndexError):
                nw.unchanged_pos(data, est, bad, data_p, pst, pen, pstates, v_count, v_last, 0)
