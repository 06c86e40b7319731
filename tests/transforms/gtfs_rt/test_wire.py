"""Column-wise protobuf walks and hashes (transforms/gtfs_rt/wire.py) agree with upb."""

from __future__ import annotations

import numpy as np
from google.transit import gtfs_realtime_pb2 as pb

from transforms.gtfs_rt.wire import HASH_WIDTH, hash_ranges, repeated


def _buffer(parts: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ends = np.cumsum([len(p) for p in parts]).astype(np.int64)
    starts = ends - np.array([len(p) for p in parts], dtype=np.int64)
    return np.frombuffer(b"".join(parts) + bytes(16), dtype=np.uint8), starts, ends


def _by_lane(buf, lane, start, length, n) -> list[list[bytes]]:
    out: list[list[bytes]] = [[] for _ in range(n)]
    for ln, s, k in zip(lane.tolist(), start.tolist(), length.tolist()):
        out[ln].append(buf[s:s + k].tobytes())
    return out


def _entities() -> list[pb.FeedEntity]:
    out = []
    for i, n in enumerate((3, 0, 1, 40)):
        e = pb.FeedEntity(id=f"e{i}")
        tu = e.trip_update
        tu.trip.trip_id = f"T{i}"
        for k in range(n):
            s = tu.stop_time_update.add(stop_sequence=k + 1, stop_id="停留所" * (k % 3))
            s.arrival.time = 1_700_000_000 + 60 * k
            if k % 2:
                s.departure.delay = -k
        tu.timestamp = 1_700_000_000 + i  # a varint field after the stop_time_updates
        tu.delay = -30
        out.append(e)
    out.append(pb.FeedEntity(id="vehicle only", vehicle=pb.VehiclePosition(stop_id="S")))
    return out


def test_every_stop_time_update_of_every_trip_update_is_found_in_order():
    ents = _entities()
    buf, starts, ends = _buffer([e.SerializeToString() for e in ents])
    tl, ts, tn, bad = repeated(buf, starts, ends, 3)
    sl, ss, sn, bad2 = repeated(buf, ts, ts + tn, 2)
    assert not bad.any() and not bad2.any()
    got = _by_lane(buf, tl[sl], ss, sn, len(ents))
    assert got == [[s.SerializeToString() for s in e.trip_update.stop_time_update] for e in ents]


def test_a_trip_update_given_twice_in_an_entity_is_merged_like_protobuf():
    a, b = _entities()[0], _entities()[3]
    tu_b = b.trip_update.SerializeToString()
    data = a.SerializeToString() + b"\x1a" + _varint(len(tu_b)) + tu_b  # field 3 once more
    buf, starts, ends = _buffer([data])
    tl, ts, tn, _ = repeated(buf, starts, ends, 3)
    sl, ss, sn, _ = repeated(buf, ts, ts + tn, 2)
    merged = pb.FeedEntity.FromString(data)
    assert _by_lane(buf, tl[sl], ss, sn, 1)[0] == [s.SerializeToString() for s in merged.trip_update.stop_time_update]
    assert len(merged.trip_update.stop_time_update) == 43


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_a_field_of_the_wrong_wire_type_or_running_past_its_message_flags_the_lane():
    buf, starts, ends = _buffer([b"\x18\x01", b"\x1a\x05ab", b"\x1a\x02ab"])  # field 3 as a varint; 5 bytes announced, 2 given; fine
    _, _, _, bad = repeated(buf, starts, ends, 3)
    assert bad.tolist() == [True, True, False]


def test_equal_bytes_hash_equal_and_different_bytes_differ():
    strings = [b"", b"\x00", b"\x00\x00", b"a" * 8, b"a" * 9, b"a" * 7 + b"b", b"\x12\x03abc", b"x" * HASH_WIDTH,
               b"x" * (HASH_WIDTH + 1), b"y" * 300, b"y" * 299 + b"z", bytes(range(256)) * 2]
    buf, starts, ends = _buffer(strings + strings[::-1])  # each string twice, at other offsets
    h1, h2 = hash_ranges(buf, starts, ends - starts)
    n = len(strings)
    pairs = list(zip(h1.tolist(), h2.tolist()))
    assert pairs[:n] == pairs[n:][::-1]
    assert len(set(pairs[:n])) == n
