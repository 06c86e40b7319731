"""One pass over stop_times in trip order: the per-trip figures every stop_times rule reads, sorted once.

DuckDB sorts the stop times by (trip_id, stop_sequence) once and streams them in batches of whole
trips; numpy and pyarrow shift and fill within each trip (the previous stop time, the previous one
with both times, the last departure and distance before it, the running distance, the same-time
runs) and DuckDB computes the distances with the rules' own ``haversine_m``, so every figure is
the one :data:`COLUMNS`' SQL definition gives (``pass_sql`` in transforms/rules/stop_times.py),
the running distance summed stop by stop. The rules then filter one table instead of each sorting
7M rows again (bench/README.md, "stop_times rules in one pass").
"""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The columns of the table, in order: the stop time (without shape_dist_traveled, which only the side table ``_dist``
#: reads; ``located``: it has coordinates; ``routed``: its trip has a route; ``shape_k``: its trip's shape by number,
#: stop_times.SHAPE_KEYS),
#: its position ``r`` in the pass and ``i`` in its trip, ``first_visit``: whether it is its trip's first stop time at its stop
#: (NULL when not located); the previous stop time's departure, whether it is located and
#: the distance from it (``leg_m``, 0 without coordinates), the running sum ``cum_m`` and its trip's total ``trip_m``;
#: ``t_prev``: whether the previous stop time is the last one before it with both times; ``run``: the number of the
#: same-time run it is in (0: before the trip's first stop time with both times) and ``run_n`` the stop times in that run.
COLUMNS = ("r", "trip_id", "_line", "stop_id", "stop_sequence", "arrival_time", "departure_time", "located", "route_type",
           "routed", "shape_k", "i", "first_visit", "p_dep", "p_located", "leg_m", "cum_m", "trip_m", "t_prev", "run", "run_n")

#: The side tables made with the pass (its name and the suffix), each the few rows its one reader can report with the
#: figures only that reader needs, so the 7M-row pass does not carry them on every row (bench/README.md, session 15):
#: ``_back``: the stop times that arrive before the last departure before them (``prev_dep``, at ``prev_dep_seq``);
#: ``_dist``: those whose shape_dist_traveled is not above the last one before them (``prev_dist`` at ``prev_dist_seq``);
#: ``_timed``: those after a stop time with both times (``t_r``, its departure ``t_dep``, whether it is located and the
#: distance from it ``t_m``) that is not the previous one (where it is, ``t_prev``, those are p_dep, p_located, leg_m).
SIDES = {
    "_back": ("trip_id", "_line", "stop_sequence", "arrival_time", "prev_dep", "prev_dep_seq"),
    "_dist": ("trip_id", "_line", "stop_id", "stop_sequence", "shape_dist_traveled", "prev_dist", "prev_dist_seq"),
    "_timed": ("r", "trip_id", "_line", "stop_id", "stop_sequence", "arrival_time", "departure_time", "route_type", "routed",
               "located", "t_r", "t_dep", "t_located", "t_m"),
}

#: Rows per batch read from the sort (a batch is cut at its last trip's start, which goes on with the next batch).
BATCH_ROWS = 1 << 18
#: Positions in a trip summed by the vectorised running sum; the rest of a longer trip is summed in a Python loop.
LONG_TRIP = 4096


def build(cur: duckdb.DuckDBPyConnection, table: str, *, rows: str, located: str, routes: str,
          batch_rows: int = BATCH_ROWS) -> None:
    """Create ``table`` (:data:`COLUMNS`) and its side tables (:data:`SIDES`) from ``rows``, a SELECT of trip_id, _line, stop_id, stop_sequence, arrival_time,
    departure_time, shape_dist_traveled with trip_id and stop_sequence never NULL and unique together (canonical
    stop_times); ``located`` gives each stop_id's lat and lon, ``routes`` each trip_id's route_type, routed and shape_k (a
    trip not there is not ``routed``), each key at most once.

    The rows are first read in their table's order (a feed's file usually holds each trip on consecutive lines in
    stop_sequence order, and then no sort is needed); if a trip's rows turn out not to be together and in order, then
    the table is made again from the rows sorted by (trip_id, stop_sequence). ``r`` is the position in the order used."""
    lookups = (cur.sql(f"SELECT stop_id, lat, lon FROM ({located}) WHERE stop_id IS NOT NULL").to_arrow_table(),
               cur.sql(f"SELECT trip_id, route_type, routed, shape_k FROM ({routes}) WHERE trip_id IS NOT NULL").to_arrow_table())
    if not _fill(cur, table, rows, lookups, batch_rows, check=True):
        _fill(cur, table, f"SELECT * FROM ({rows}) ORDER BY trip_id, stop_sequence", lookups, batch_rows, check=False)


def _looked_up(tb: pa.Table, start: np.ndarray, lookups: tuple[pa.Table, pa.Table]) -> pa.Table:
    """Return ``tb`` with lat, lon (by stop_id), route_type, routed and shape_k (by trip_id, looked up once per trip:
    ``start`` marks where each begins): a LEFT JOIN on unique keys."""
    loc, rt = lookups
    at = pc.index_in(tb.column("stop_id"), value_set=loc.column("stop_id"), skip_nulls=True)
    firsts = np.flatnonzero(start)
    per_trip = _first_rows(_one(tb.column("trip_id").take(_arr(firsts))), _one(rt.column("trip_id")))
    on = np.repeat(per_trip, np.diff(np.append(firsts, tb.num_rows)))
    on = _arr(on, on >= 0)
    return (tb.append_column("lat", pc.take(loc.column("lat"), at)).append_column("lon", pc.take(loc.column("lon"), at))
            .append_column("_stop_k", at)
            .append_column("route_type", pc.take(rt.column("route_type"), on))
            .append_column("routed", _arr(_bools(pc.take(rt.column("routed"), on))))  # NULL (no trip) as False
            .append_column("shape_k", pc.take(rt.column("shape_k"), on)))


def _first_rows(ids: pa.Array, keys: pa.Array) -> np.ndarray:
    """Return, per value of ``ids``, the first position in ``keys`` (no NULL) holding it, or -1 (NULL or not there): what
    pc.index_in(ids, value_set=keys) gives, looked up the other way round. index_in hashes its value set on every call,
    ~0.1 s a batch for the 374k trips of Vilnius ×16; here the batch's few distinct ids are hashed and ``keys`` probed."""
    if not len(ids):
        return np.zeros(0, np.int64)
    distinct = pc.unique(ids)
    hit = pc.index_in(keys, value_set=distinct, skip_nulls=True)
    found = _valid(hit)
    none = np.iinfo(np.int64).max
    first = np.full(len(distinct), none, np.int64)
    np.minimum.at(first, _nums(hit)[found].astype(np.int64), np.flatnonzero(found))
    first[first == none] = -1
    k = pc.index_in(ids, value_set=distinct, skip_nulls=True)
    known = _valid(k)
    return np.where(known, first[np.where(known, _nums(k), 0)], -1)


def _fill(cur: duckdb.DuckDBPyConnection, table: str, query: str, lookups: tuple[pa.Table, pa.Table], batch_rows: int, *,
          check: bool) -> bool:
    """Create ``table`` from the rows of ``query``, read in batches of whole trips. If ``check``, then return False (and
    drop the table) as soon as the rows are seen not to hold each trip together in stop_sequence order."""
    reader_con = cur.cursor()  # the rows stream on their own cursor while ``cur`` computes and writes each batch
    try:
        reader = reader_con.sql(query).to_arrow_reader(batch_rows)
        carry: pa.Table | None = None
        offset = 0
        created = False
        firsts: list[pa.Array] = []  # the trip_id of every trip's first row (check: each trip once)
        for batch in itertools.chain(_batches(reader, batch_rows), [None]):
            if batch is None:
                part, carry = carry, None
            else:
                tb = batch if carry is None else pa.concat_tables([carry, batch])
                cut = _last_trip_start(tb)
                part, carry = tb.slice(0, cut), tb.slice(cut)
            if part is None or (part.num_rows == 0 and created):
                continue
            part = part.combine_chunks()
            start = _trip_starts(part)
            part = _looked_up(part, start, lookups)
            if check and part.num_rows:
                seq = _nums(part.column("stop_sequence"))
                firsts.append(part.column("trip_id").filter(_arr(start)))
                if (np.diff(seq)[~start[1:]] <= 0).any():
                    _drop(cur, table, created)
                    return False
            _write(cur, table, _figures(cur, part, start, offset), create=not created)
            created = True
            offset += part.num_rows
        if not created:
            empty = _looked_up(pa.Table.from_batches([], reader.schema), np.zeros(0, bool), lookups)
            _write(cur, table, _figures(cur, empty, np.zeros(0, bool), 0), create=True)
        if check and firsts:
            ids = pa.concat_arrays([_one(f) for f in firsts])
            if pc.count_distinct(ids).as_py() != len(ids):
                _drop(cur, table, created)
                return False
        return True
    finally:
        reader_con.close()


def _drop(cur: duckdb.DuckDBPyConnection, table: str, created: bool) -> None:
    if created:
        for suffix in ("", *SIDES):
            cur.execute(f"DROP TABLE IF EXISTS {table}{suffix}")


def _trip_starts(tb: pa.Table) -> np.ndarray:
    """Return, per row of ``tb``, whether its trip_id differs from the previous row's (the first row: True)."""
    n = tb.num_rows
    start = np.ones(n, bool)
    if n > 1:
        tid = tb.column("trip_id")
        start[1:] = _bools(pc.not_equal(tid.slice(1), tid.slice(0, n - 1)))
    return start


def _batches(reader: pa.RecordBatchReader, rows: int):
    """Yield tables of at least ``rows`` rows (the last one fewer) from ``reader``: each batch costs a few statements."""
    held, n = [], 0
    for batch in reader:
        held.append(batch)
        n += batch.num_rows
        if n >= rows:
            yield pa.Table.from_batches(held)
            held, n = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _last_trip_start(tb: pa.Table) -> int:
    """Return the row where the last trip of ``tb`` starts (0 when it holds one trip): the rows are sorted by trip_id, so
    it is the first row of the tail equal to the last one (looked for in a growing tail)."""
    tid = tb.column("trip_id")
    n = len(tid)
    last = tid[n - 1]
    tail = 64
    while True:
        lo = max(0, n - tail)
        same = _bools(pc.equal(tid.slice(lo), last))
        if not same.all():
            return lo + int(len(same) - np.argmax(~same[::-1]))
        if lo == 0:
            return 0
        tail *= 4


def _write(cur: duckdb.DuckDBPyConnection, table: str, figures: dict[str, pa.Table], *, create: bool) -> None:
    """Create (or append to) ``table`` and its side tables: ``figures`` holds their rows by suffix."""
    for suffix, rows in figures.items():
        if not create and not rows.num_rows:
            continue
        cur.register("_stop_pass_part", rows)
        try:
            if create:
                cur.execute(f"CREATE OR REPLACE TABLE {table}{suffix} AS SELECT * FROM _stop_pass_part")
            else:
                cur.execute(f"INSERT INTO {table}{suffix} SELECT * FROM _stop_pass_part")
        finally:
            cur.unregister("_stop_pass_part")


def _arr(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Return ``values`` (a numeric or boolean numpy array) as Arrow, NULL where not ``valid``. Built from buffers: pa.array
    imports pandas (0.2 s cold, more than a small feed's whole pass)."""
    n = len(values)
    bits = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if values.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), n, [bits, pa.py_buffer(np.packbits(values, bitorder="little"))])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n, [bits, pa.py_buffer(values)])


def _one(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Return ``col`` as one Array (ChunkedArray.combine_chunks of no chunk imports pandas, 0.2 s cold: a feed whose
    stop_times are empty or all quarantined; tests/transforms/test_arrowrows.py)."""
    if not isinstance(col, pa.ChunkedArray):
        return col
    return col.combine_chunks() if col.num_chunks else pa.nulls(0, col.type)


def _bools(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Return a boolean Arrow column as numpy (NULL as False), from its bits (to_numpy here imports pandas)."""
    a = _one(col)
    n, off = len(a), a.offset
    if not n:
        return np.zeros(0, bool)
    valid, data = a.buffers()[:2]
    out = np.unpackbits(np.frombuffer(data, np.uint8), count=off + n, bitorder="little")[off:].astype(bool)
    if valid is not None and a.null_count:
        out &= np.unpackbits(np.frombuffer(valid, np.uint8), count=off + n, bitorder="little")[off:].astype(bool)
    return out


#: Arrow types the pass reads as numbers, and their numpy types.
_NUMPY = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def _nums(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Return a numeric Arrow column's values as numpy (a NULL's value is undefined), from its buffer."""
    a = _one(col)
    n = len(a)
    if not n:
        return np.zeros(0, _NUMPY[a.type])
    return np.frombuffer(a.buffers()[1], _NUMPY[a.type], count=a.offset + n)[a.offset:]


def _valid(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return _bools(pc.is_valid(col))


def _figures(cur: duckdb.DuckDBPyConnection, tb: pa.Table, start: np.ndarray, offset: int) -> dict[str, pa.Table]:
    """Return the :data:`COLUMNS` of ``tb`` (under ``""``) and the rows of each table of :data:`SIDES` (under its suffix),
    whole trips each in stop_sequence order (``start``: where each begins), the first row at position ``offset``."""
    n = tb.num_rows
    if offset + n > np.iinfo(np.int32).max:  # positions are INTEGER; a feed that big was refused long before
        raise ValueError(f"stop_times has more than {np.iinfo(np.int32).max:,} rows")
    ar = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(start, ar, 0)) if n else ar

    def before(valid: np.ndarray) -> np.ndarray:
        """Return, per row, the last earlier row of its trip where ``valid``, or -1."""
        last = np.maximum.accumulate(np.where(valid, ar, -1)) if n else ar
        prev = np.full(n, -1, np.int64)
        prev[1:] = last[:-1]
        prev[prev < first] = -1
        return prev

    def take(col: str, idx: np.ndarray) -> pa.Array:
        return pc.take(tb.column(col), _arr(idx, idx >= 0))

    arr, dep = tb.column("arrival_time"), tb.column("departure_time")
    p = np.where(start, -1, ar - 1)
    pd, pt = before(_valid(dep)), before(_valid(arr) & _valid(dep))
    sdt = tb.column("shape_dist_traveled")
    pdist = before(_valid(sdt))
    prev_dep = take("departure_time", pd)
    leg = _legs(cur, tb, p)
    # 0 where either time is NULL, or where the previous departure, the arrival and the departure are equal; else 1
    timed = _valid(arr) & _valid(dep)
    same = (pd >= 0) & (_nums(dep)[np.maximum(pd, 0)] == _nums(arr)) & (_nums(arr) == _nums(dep))
    starts = (timed & ~same).astype(np.int64)
    runs = np.cumsum(starts)
    runs -= (runs - starts)[first]
    segment = np.cumsum(starts | start)  # a run, or a trip's stop times before its first run
    run_n = np.bincount(segment)[segment] if n else segment
    starts_at = np.flatnonzero(start)
    lengths = np.diff(np.append(starts_at, n))
    cum = _running_sum(leg, starts_at, lengths)
    located = _valid(tb.column("lat"))
    t_prev = (pt >= 0) & (pt == p)
    cols = {
        "r": _arr((ar + offset).astype(np.int32)),
        "trip_id": tb.column("trip_id"), "_line": tb.column("_line"), "stop_id": tb.column("stop_id"),
        "stop_sequence": tb.column("stop_sequence"), "arrival_time": arr, "departure_time": dep,
        "located": _arr(located), "route_type": tb.column("route_type"),
        "routed": tb.column("routed"), "shape_k": tb.column("shape_k"), "i": _arr((ar - first + 1).astype(np.int32)),
        "first_visit": _arr(_first_visits(_nums(tb.column("_stop_k")), first, located), located),
        "p_dep": take("departure_time", p), "p_located": _arr(np.where(p >= 0, located[np.maximum(p, 0)], False)),
        "leg_m": _arr(leg), "cum_m": _arr(cum), "trip_m": _arr(cum[np.repeat(starts_at + lengths - 1, lengths)]),
        "t_prev": _arr(t_prev), "run": _arr(runs.astype(np.int32)), "run_n": _arr(run_n.astype(np.int32)),
    }
    out = {"": pa.table([cols[c] for c in COLUMNS], names=list(COLUMNS))}
    # the side tables: the few rows their one reader can report, with the figures only it reads
    back = np.flatnonzero(_bools(pc.less(arr, prev_dep)))
    out["_back"] = _side(tb, back, {"prev_dep": prev_dep.take(_arr(back)), "prev_dep_seq": take("stop_sequence", pd[back])},
                         "_back")
    d = _nums(sdt)
    dist = np.flatnonzero(_valid(sdt) & (pdist >= 0) & (d <= d[np.maximum(pdist, 0)]))
    out["_dist"] = _side(tb, dist, {"prev_dist": take("shape_dist_traveled", pdist[dist]),
                                    "prev_dist_seq": take("stop_sequence", pdist[dist])}, "_dist")
    timed = np.flatnonzero((pt >= 0) & ~t_prev)
    tt = pt[timed]
    y = pa.table({"k": _arr(np.arange(len(timed), dtype=np.int64)), "lat": tb.column("lat").take(_arr(timed)),
                  "lon": tb.column("lon").take(_arr(timed)), "t_lat": take("lat", tt), "t_lon": take("lon", tt)})
    t_m = _by_k(cur, y, "SELECT k, haversine_m(t_lat, t_lon, lat, lon) AS t_m FROM _stop_pass_x", len(timed)) if len(timed) else None
    out["_timed"] = _side(tb, timed, {
        "r": _arr((timed + offset).astype(np.int32)), "located": _arr(located[timed]),
        "t_r": _arr((tt + offset).astype(np.int32)), "t_dep": take("departure_time", tt), "t_located": pc.is_valid(y.column("t_lat")),
        "t_m": t_m.column("t_m") if t_m is not None else pa.nulls(0, pa.float64())}, "_timed")
    return out


def _legs(cur: duckdb.DuckDBPyConnection, tb: pa.Table, p: np.ndarray) -> np.ndarray:
    """Return, per row of ``tb``, the distance from the stop time at row ``p`` (-1: none) by the rules' ``haversine_m``, 0
    where either has no coordinates: computed once per distinct pair of stops (``_stop_k``), then spread to its rows. The
    trips of a pattern repeat its legs (Vilnius x16: 7.1M legs of a few thousand pairs of stops), and the macro gives a pair
    the same value on every row, so each value is the one the SQL definition gives that row."""
    n = tb.num_rows
    leg = np.zeros(n, np.float64)
    stop = tb.column("_stop_k")
    ok = _valid(stop) & _valid(tb.column("lat")) & _valid(tb.column("lon"))  # lat and lon are the stop's (``_stop_k``)
    rows = np.flatnonzero((p >= 0) & ok & ok[np.maximum(p, 0)])
    if not len(rows):
        return leg
    k = np.where(ok, _nums(stop), 0).astype(np.int64)  # (a NULL's value is undefined)
    span = int(k.max()) + 1
    codes = _arr(k[p[rows]] * span + k[rows])
    pairs = pc.unique(codes)
    which = _nums(pc.index_in(codes, value_set=pairs)).astype(np.int64)
    u = _nums(pairs)
    lat, lon = tb.column("lat"), tb.column("lon")
    firsts = np.empty(len(u), np.int64)  # a row of each pair (any: its stops' coordinates are the same on every one)
    firsts[which] = rows
    at, prev = _arr(firsts), _arr(p[firsts])
    x = pa.table({"k": _arr(np.arange(len(u), dtype=np.int64)), "lat": lat.take(at), "lon": lon.take(at),
                  "p_lat": lat.take(prev), "p_lon": lon.take(prev)})
    m = _by_k(cur, x, "SELECT k, coalesce(haversine_m(p_lat, p_lon, lat, lon), 0) AS leg_m FROM _stop_pass_x", len(u))
    leg[rows] = _nums(m.column("leg_m"))[which]
    return leg


def _side(tb: pa.Table, rows: np.ndarray, figures: dict[str, pa.Array], suffix: str) -> pa.Table:
    """Return the side table ``suffix`` of :data:`SIDES`: its columns of ``tb`` at ``rows``, then ``figures``."""
    picked = _arr(rows.astype(np.int64))
    cols = {**{c: tb.column(c).take(picked) for c in SIDES[suffix] if c not in figures and c in tb.column_names}, **figures}
    return pa.table([cols[c] for c in SIDES[suffix]], names=list(SIDES[suffix]))


def _by_k(cur: duckdb.DuckDBPyConnection, x: pa.Table, sql: str, n: int) -> pa.Table:
    """Return the rows of ``sql`` over ``x`` (registered as _stop_pass_x, its column k numbering its rows from 0) in k's
    order: the distances by the rules' own macro, so they are the SQL definition's to the last bit."""
    cur.register("_stop_pass_x", x)
    try:
        m = cur.sql(sql).to_arrow_table()
    finally:
        cur.unregister("_stop_pass_x")
    k = _nums(m.column("k"))
    if n and not (k[0] == 0 and (np.diff(k) == 1).all()):  # rows back in another order (preserve_insertion_order off)
        m = m.take(_arr(np.argsort(k)))
    return m


def _first_visits(stop: np.ndarray, first: np.ndarray, located: np.ndarray) -> np.ndarray:
    """Return, per row, whether no earlier row of its trip (``first``: the row where each row's trip begins) has its ``stop``
    (an index per stop_id; only rows where ``located`` count): the rows sorted by stop (stable, a radix sort while the
    indices fit 16 bits), a row is a repeat when the previous row at its stop is in its trip."""
    n = len(stop)
    if not n:
        return np.zeros(0, bool)
    codes = np.where(located, stop.astype(np.int64) + 1, 0)
    if codes.max() < 1 << 16:
        codes = codes.astype(np.uint16)
    order = np.argsort(codes, kind="stable")
    s = codes[order]
    prev = np.full(n, -1, np.int64)
    prev[order[1:]] = np.where(s[1:] == s[:-1], order[:-1], -1)
    return prev < first


def _running_sum(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the running sum of ``values`` within each trip (rows starts[k] .. starts[k] + lengths[k] - 1), added stop by
    stop in order as a loop would: position k of every trip at least k + 1 long at once, a longer trip's tail in Python."""
    out = values.astype(np.float64, copy=True)
    if not len(starts):
        return out
    order = np.argsort(-lengths, kind="stable")
    s, neg_len = starts[order], -lengths[order]
    for k in range(1, min(int(-neg_len[0]), LONG_TRIP)):
        idx = s[: np.searchsorted(neg_len, -k, side="left")] + k
        out[idx] += out[idx - 1]
    for a, ln in zip(starts[lengths > LONG_TRIP], lengths[lengths > LONG_TRIP]):
        a, b = int(a) + LONG_TRIP, int(a) + int(ln)
        out[a:b] = list(itertools.accumulate(values[a:b].tolist(), initial=float(out[a - 1])))[1:]
    return out
