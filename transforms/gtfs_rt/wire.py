"""Columnar decoding of many small protobuf messages at once with numpy (the stop_time_updates of an hour).

The messages are given as one byte buffer and the offsets where each ends (as upb serialised them, so
well-formed). Each step decodes one field of every message still unfinished, so the Python work is
per field *position*, not per message. A message holding something this decoder does not read
(a group, a wrongly typed known field) is flagged, and its caller decodes it with upb instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

VARINT, STRING, MESSAGE = "varint", "string", "message"


def _varints(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (values as uint64, positions after them, lanes whose varint ran over 10 bytes) of the varints at ``pos``."""
    val = np.zeros(len(pos), dtype=np.uint64)
    out = pos.copy()
    lanes = np.arange(len(pos))
    bad = np.zeros(len(pos), dtype=bool)
    p = pos
    for k in range(10):
        b = buf[p]
        val[lanes] |= (b & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        more = b >= 0x80
        out[lanes] = p + 1
        if not more.any():
            return val, out, bad
        lanes, p = lanes[more], p[more] + 1
    bad[lanes] = True
    return val, out, bad


def decode(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, schema: dict) -> tuple[dict, np.ndarray]:
    """Return ({field number: columns}, lanes to decode otherwise) of the messages ``buf[starts[i]:ends[i]]``.

    ``schema`` maps a field number to VARINT, STRING or (MESSAGE, sub-schema). A VARINT field gives
    (uint64 values, present mask); STRING gives (start, length, present); MESSAGE gives (its own dict,
    present). Unknown fields are skipped. ``buf`` must be padded with 10 zero bytes after the last message.
    """
    n = len(starts)
    out: dict = {}
    for f, kind in schema.items():
        if kind == VARINT:
            out[f] = (np.zeros(n, np.uint64), np.zeros(n, bool))
        elif kind == STRING:
            out[f] = (np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool))
        else:
            out[f] = [np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)]  # sub-message ranges, decoded below
    fallback = np.zeros(n, dtype=bool)
    varint_fields = np.array([f for f, k in schema.items() if k == VARINT], dtype=np.int64)
    len_fields = np.array([f for f, k in schema.items() if k != VARINT], dtype=np.int64)
    lanes = np.arange(n)
    pos = starts.astype(np.int64)
    end = ends.astype(np.int64)
    live = pos < end
    lanes, pos, end = lanes[live], pos[live], end[live]
    top = max(schema) + 1
    kinds = np.zeros(top + 1, dtype=np.int8)  # by field number (top: any other): 1 varint, 2 length-delimited, 0 unknown
    kinds[varint_fields] = 1
    kinds[len_fields] = 2
    while len(lanes):
        key = buf[pos]
        if (key < 0x80).all():  # one-byte keys (fields 1-15): the usual case
            pos = pos + 1
            fn = (key >> 3).astype(np.int64)
            wt = (key & 7).astype(np.int64)
        else:
            key, pos, bad = _varints(buf, pos)
            fallback[lanes[bad]] = True
            fn = (key >> np.uint64(3)).astype(np.int64)
            wt = (key & np.uint64(7)).astype(np.int64)
        newpos = np.full(len(lanes), -1, dtype=np.int64)
        w0 = wt == 0
        if w0.any():
            v, after, bad = _varints(buf, pos[w0])
            newpos[w0] = after
            l0, f0 = lanes[w0], fn[w0]
            fallback[l0[bad]] = True
            for f in varint_fields:
                sel = f0 == f
                if sel.any():
                    vals, present = out[int(f)]
                    vals[l0[sel]] = v[sel]
                    present[l0[sel]] = True
        w2 = wt == 2
        if w2.any():
            ln, after, bad = _varints(buf, pos[w2])
            l2, f2 = lanes[w2], fn[w2]
            fallback[l2[bad]] = True
            ln = ln.astype(np.int64)
            newpos[w2] = after + ln
            for f in len_fields:
                sel = f2 == f
                if sel.any():
                    col = out[int(f)]
                    col[0][l2[sel]] = after[sel]
                    col[1][l2[sel]] = ln[sel]
                    col[2][l2[sel]] = True
        w1, w5 = wt == 1, wt == 5
        newpos[w1] = pos[w1] + 8
        newpos[w5] = pos[w5] + 4
        other = newpos < 0
        kind = kinds[np.minimum(fn, top)]
        known_wrong = (kind == 1) & ~w0 | (kind == 2) & ~w2
        fallback[lanes[other | known_wrong]] = True
        newpos[other] = end[other]
        stay = newpos < end
        overrun = newpos > end
        fallback[lanes[overrun]] = True
        lanes, pos, end = lanes[stay], newpos[stay], end[stay]
    for f, kind in schema.items():
        if isinstance(kind, tuple):
            start, ln, present = out[f]
            sub, fb = decode(buf, start[present], start[present] + ln[present], kind[1])
            fallback[np.flatnonzero(present)[fb]] = True
            out[f] = (sub, present, np.flatnonzero(present))  # sub columns are for the lanes where present
    return out, fallback


def strings(buf: np.ndarray, col: tuple) -> pa.Array:
    """Return a pyarrow string array of a STRING column (null where absent or empty). Invalid UTF-8 is replaced."""
    start, ln, present = col
    present = present & (ln > 0)
    ln = np.where(present, ln, 0)
    offsets = np.zeros(len(ln) + 1, dtype=np.int64)
    np.cumsum(ln, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        idx = np.repeat(start - offsets[:-1], ln) + np.arange(total, dtype=np.int64)
        data = buf[idx]
    else:
        data = np.zeros(0, np.uint8)
    mask = pa.array(present).buffers()[1] if not present.all() else None
    arr = pa.LargeStringArray.from_buffers(len(ln), pa.py_buffer(offsets), pa.py_buffer(data.tobytes()), mask,
                                           null_count=int((~present).sum()))
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        arr = pa.array([None if x is None else x.decode("utf-8", "replace") for x in
                        pa.Array.from_buffers(pa.large_binary(), len(ln), [mask, pa.py_buffer(offsets),
                                                              pa.py_buffer(data.tobytes())]).to_pylist()],
                       pa.large_string())
    return arr.cast(pa.string())


def ints(col: tuple, typ: pa.DataType, *, signed32: bool = False, present: np.ndarray | None = None, lanes: np.ndarray | None = None,
         n: int | None = None) -> pa.Array:
    """Return a pyarrow integer array of a VARINT column (null where absent). ``lanes``/``n`` spread a sub-message's column."""
    vals, have = col
    v = vals.view(np.int64)
    if signed32:
        v = v.astype(np.int32)
    if lanes is not None:
        full = np.zeros(n, dtype=v.dtype)
        full[lanes] = v
        h = np.zeros(n, dtype=bool)
        h[lanes] = have
        v, have = full, h
    return pa.array(v, mask=~have).cast(typ)


def _step(buf, lanes, pos, end, field, bad, got_l, got_s, got_n) -> np.ndarray:
    """One field of every lane (any key, wire type and length); return where each lane's next field starts."""
    key, pos, b = _varints(buf, pos)
    bad[lanes[b]] = True
    fn = (key >> np.uint64(3)).astype(np.int64)
    wt = (key & np.uint64(7)).astype(np.int64)
    newpos = np.full(len(lanes), -1, dtype=np.int64)
    w0 = wt == 0
    if w0.any():
        _, after, b = _varints(buf, pos[w0])
        newpos[w0] = after
        bad[lanes[w0][b]] = True
    w2 = wt == 2
    if w2.any():
        ln, after, b = _varints(buf, pos[w2])
        l2 = lanes[w2]
        bad[l2[b]] = True
        ln = ln.astype(np.int64)
        newpos[w2] = after + ln
        sel = fn[w2] == field
        if sel.any():
            got_l.append(l2[sel])
            got_s.append(after[sel])
            got_n.append(ln[sel])
    w1, w5 = wt == 1, wt == 5
    newpos[w1] = pos[w1] + 8
    newpos[w5] = pos[w5] + 4
    other = (newpos < 0) | ((fn == field) & ~w2)
    bad[lanes[other]] = True
    newpos[other] = end[other]
    return newpos


_TEN = np.arange(10)


def repeated(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, field: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (lane, start, length, bad lanes) of every occurrence of length-delimited field ``field`` in the messages
    ``buf[starts[i]:ends[i]]``, ordered by lane and, within a lane, as in the message (a repeated field, or a singular
    message field given more than once, which protobuf merges). ``buf`` must be padded with 10 zero bytes.

    A lane is bad when its bytes are not well-formed or ``field`` has another wire type there.
    """
    n = len(starts)
    bad = np.zeros(n, dtype=bool)
    got_l: list[np.ndarray] = []
    got_s: list[np.ndarray] = []
    got_n: list[np.ndarray] = []
    pos = np.asarray(starts, dtype=np.int64)
    end = np.asarray(ends, dtype=np.int64)
    live = pos < end
    lanes, pos, end = np.flatnonzero(live), pos[live], end[live]
    raw: list[tuple] = []  # (lanes, positions, keys, lengths) of the fields read by the usual step
    want = field << 3 | 2
    while len(lanes):
        key = buf[pos]
        ln = buf[pos + 1]
        fast = ((key & 0x87) == 2) & (ln < 0x80)  # the usual field: a one-byte key, length-delimited, shorter than 128 bytes
        newpos = pos + 2 + ln
        if fast.all():
            raw.append((lanes, pos, key, ln))
        else:
            raw.append((lanes[fast], pos[fast], key[fast], ln[fast]))
            w0 = (key & 0x87) == 0  # a one-byte key of a varint (a timestamp, a delay): skipped
            if w0.any():
                p = pos[w0] + 1
                term = buf[p[:, None] + _TEN] < 0x80
                newpos[w0] = p + term.argmax(axis=1) + 1
                long = ~term.any(axis=1) | ((key[w0] >> 3) == field)  # or the field asked for, as a number
                if long.any():
                    bad[lanes[w0][long]] = True
            slow = ~(fast | w0)
            if slow.any():  # any other field
                newpos[slow] = _step(buf, lanes[slow], pos[slow], end[slow], field, bad, got_l, got_s, got_n)
        stay = newpos < end
        if stay.all():
            pos = newpos
        else:
            gone = ~stay
            bad[lanes[gone][newpos[gone] > end[gone]]] = True  # ran past the end of its message
            lanes, pos, end = lanes[stay], newpos[stay], end[stay]
    if raw:
        rl, rp, rk, rn = (np.concatenate(x) for x in zip(*raw))
        sel = rk == want
        got_l.append(rl[sel])
        got_s.append(rp[sel] + 2)
        got_n.append(rn[sel].astype(np.int64))
    lane, start, length = (np.concatenate(x) if x else np.zeros(0, dtype=np.int64) for x in (got_l, got_s, got_n))
    if len(lane):
        order = np.lexsort((start, lane))  # by lane, then as in the message
        lane, start, length = lane[order], start[order], length[order]
    return lane, start, length, bad


#: Seeds of :func:`hash_ranges`, drawn per process (a feed cannot aim at them).
_SEEDS = np.frombuffer(__import__("os").urandom(32), dtype=np.uint64) | np.uint64(1)
_M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
#: Byte strings longer than this are hashed by BLAKE2b one by one instead of column-wise.
HASH_WIDTH = 256


def hash_ranges(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return two 64-bit hashes (seeded per process, length included) of each byte string ``buf[starts[i]:starts[i]+lengths[i]]``.

    Equal strings have equal hashes; for different strings to share both takes chance (the seeds are secret, drawn per
    process; strings of up to 8 bytes never collide). Strings up to HASH_WIDTH bytes are hashed together, 8 bytes at a
    time; longer ones by keyed BLAKE2b, one by one.
    """
    import hashlib

    n = len(starts)
    lengths = np.asarray(lengths, dtype=np.int64)
    h1 = lengths.astype(np.uint64) * _M1 ^ _SEEDS[0]
    h2 = lengths.astype(np.uint64) * _M2 ^ _SEEDS[1]
    short = lengths <= HASH_WIDTH
    if n and short.any():
        ss = np.asarray(starts, dtype=np.int64)[short]
        ls = lengths[short]
        width = max(8, -(-int(ls.max()) // 8) * 8)
        padded = np.concatenate([buf, np.zeros(width, dtype=np.uint8)])
        win = np.lib.stride_tricks.sliding_window_view(padded, width)[ss]  # one row of ``width`` bytes per string
        win *= np.arange(width) < ls[:, None]  # bytes past each string's end are zeroed
        words = win.view(np.uint64)
        a, b = h1[short], h2[short]
        with np.errstate(over="ignore"):
            for k in range(words.shape[1]):
                w = words[:, k]
                a = (a ^ w) * _M1 + _SEEDS[2]
                a ^= a >> np.uint64(31)
                b = (b ^ w ^ _SEEDS[3]) * _M2
                b ^= b >> np.uint64(29)
        h1[short], h2[short] = a, b
    if not short.all():
        key = _SEEDS.tobytes()
        for i in np.flatnonzero(~short):
            s = int(starts[i])
            d = hashlib.blake2b(buf[s:s + int(lengths[i])].tobytes(), digest_size=16, key=key).digest()
            h1[i], h2[i] = np.frombuffer(d, dtype=np.uint64)
    return h1, h2
