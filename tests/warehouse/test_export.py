import zipfile

from tests.conftest import MINI_FEED, make_spec, write_feed


def test_export_rebuilds_gtfs_in_standard_order_with_exact_text(ws, tmp_path):
    from noriba.pipeline import run_feed

    files = {**MINI_FEED,
             "stops.txt": "stop_lon,stop_name,stop_id,stop_lat,my_note\n141.40,\"港前, 北口\",S1,43.30,髙\n141.41,駅前,S2,bad,\n",
             "vendor.txt": "k,v\n1,あ\n"}
    files = {k: v.encode("cp932").decode("cp932") for k, v in files.items()}
    # the untypable stop_lat is an ERROR the default policy blocks on; this feed's policy lets it pass
    spec = make_spec("mini", write_feed(tmp_path / "in", files, encoding="cp932"), policy={"allow": ["invalid_float"]})
    result = run_feed(spec, ws)
    with zipfile.ZipFile(result["exports"]["gtfs_zip"]) as zf:
        stops = zf.read("stops.txt").decode("utf-8")
        times = zf.read("stop_times.txt").decode("utf-8")
        assert zf.read("vendor.txt").decode("utf-8") == "k,v\n1,あ\n"
    assert stops.splitlines() == ["stop_id,stop_name,stop_lat,stop_lon,my_note", 'S1,"港前, 北口",43.3,141.4,髙', "S2,駅前,bad,141.41,"]
    assert "T1,24:10:00,24:10:00,S2,2" in times


def _feed_zip(path, extra: dict[str, bytes]):
    """Return ``path`` after writing MINI_FEED and the ``extra`` members (names taken as given) into it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in MINI_FEED.items():
            zf.writestr(name, text.encode("utf-8"))
        for name, data in extra.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name as given ('..', leading '/')
    return path


def test_zip_member_outside_folder_is_refused_and_never_written(ws, tmp_path):
    from noriba.pipeline import run_feed

    outside = tmp_path / "outside-abs" / "new" / "dir"
    climbing = "../" * 12 + str(tmp_path.relative_to("/")) + "/outside-rel/x.sh"
    feed = _feed_zip(tmp_path / "feed.zip", {climbing: b"#!/bin/sh\necho owned\n", str(outside / "x.bin"): b"\x00\x01",
                                             "docs/readme.bin": b"kept"})
    # unsafe_file_name is an ERROR; this feed's policy lets it pass so that the export runs too
    result = run_feed(make_spec("slip", feed, policy={"allow": ["unsafe_file_name"]}), ws)
    assert not (tmp_path / "outside-rel").exists(), "a member climbing out of the folder was written"
    assert not (tmp_path / "outside-abs").exists(), "a member with an absolute path was written"
    with zipfile.ZipFile(result["exports"]["gtfs_zip"]) as zf:
        names = zf.namelist()
    assert "docs/readme.bin" in names, "a harmless member in a sub-folder is still kept"
    assert not [n for n in names if ".." in n or n.startswith("/") or "outside" in n]
    import pyarrow.parquet as pq

    notes = pq.read_table(ws.lake_partition("quality_notices", "slip", result["feed_version"]) / "part-0.parquet").to_pylist()
    refused = [n for n in notes if n["code"] == "unsafe_file_name"]
    assert {n["file"] for n in refused} == {climbing, str(outside / "x.bin")}
    assert all(n["severity"] == "ERROR" for n in refused)


def test_export_never_writes_a_lake_file_name_outside_its_folder(ws, tmp_path):
    """A lake version written before names were checked may hold one; the export leaves it out and says so."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from noriba.pipeline import run_feed
    from warehouse.export import export_version

    result = run_feed(make_spec("old", write_feed(tmp_path / "in", MINI_FEED)), ws, export=False)
    bad = "../" * 12 + str(tmp_path.relative_to("/")) + "/outside/x.sh"
    blobs = ws.lake_partition("gtfs_other_blobs", "old", result["feed_version"]) / "part-0.parquet"
    blobs.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"file_name": [bad, str(tmp_path / "abs" / "y.bin"), "ok/z.bin"], "content": [b"1", b"2", b"3"]}), blobs)
    out = export_version(ws, "old", result["feed_version"])
    assert not (tmp_path / "outside").exists() and not (tmp_path / "abs").exists()
    with zipfile.ZipFile(out["gtfs_zip"]) as zf:
        assert zf.read("ok/z.bin") == b"3"
        assert not [n for n in zf.namelist() if ".." in n or n.startswith("/")]
    assert sorted(out["left_out"]) == sorted([bad, str(tmp_path / "abs" / "y.bin")])


def test_export_removes_the_temporary_files_killed_exports_left_and_keeps_real_exports(ws, tmp_path):
    from noriba.pipeline import run_feed

    res = run_feed(make_spec("mini", write_feed(tmp_path / "in", MINI_FEED)), ws, contracts=False, export=False)
    zip_path = ws.exports / "gtfs" / "mini" / f"mini_{res['feed_version']}.zip"
    legacy = ws.exports / "tmpab12_x9z"  # tempfile's folder, from older versions
    (legacy / "stops.txt").parent.mkdir(parents=True)
    (legacy / "stops.txt").write_text("half", encoding="utf-8")
    lookalike = ws.exports / "tmpexport"  # an export whose id looks like a temporary name
    (lookalike / "v1").mkdir(parents=True)
    (lookalike / "latest.json").write_text("{}", encoding="utf-8")
    zip_path.parent.mkdir(parents=True)
    old_tmp = zip_path.with_suffix(".zip.tmp")  # older versions' zip in progress
    old_tmp.write_bytes(b"PK half")
    ours = zip_path.parent / f".{zip_path.stem}.tmp-abcd"  # this version's folder in progress
    (ours / "gtfs").mkdir(parents=True)
    pq_dir = ws.exports / "parquet" / "mini" / res["feed_version"]
    half_pq = pq_dir.with_name(f".{pq_dir.name}.old-1234")
    half_pq.mkdir(parents=True)
    from warehouse.export import export_version

    out = export_version(ws, "mini", res["feed_version"])
    assert out["gtfs_zip"] == str(zip_path) and zipfile.ZipFile(zip_path).testzip() is None
    assert not legacy.exists() and not old_tmp.exists() and not ours.exists() and not half_pq.exists()
    assert (lookalike / "latest.json").exists()
    assert sorted(p.name for p in zip_path.parent.iterdir()) == [zip_path.name]
    assert sorted(p.name for p in pq_dir.iterdir()) == sorted(f"{t}.parquet" for t in ("agency", "calendar", "routes", "stop_times", "stops", "trips"))


# Members that differ from their canonical text in one way each, and members already canonical (copied as received).
_TRICKY = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通 ,https://example.jp,Asia/Tokyo\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\n",  # floats: always rendered
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_url\nR1,A,1,港線,03,\nR2,A,2,#2,3,\n",
    "trips.txt": "route_id,service_id,trip_id,vendor_x\nR1,WD,T1, \nR2,WD,T2,乗\nR2,WD,T3,\n",
    "stop_times.txt": ("trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type\n"
                       "T1,08:00:00,08:00:00,S1,1,0\nT1,24:10:00,24:10:00,S2,2,\nT2,7:00:00,07:00:00,S1,1,1\n"
                       "T2,07:05:00,07:05:00,S2,2,-0\nT3,25:61:00,26:00:00,S1,1,1\nT3,99:00:00,99:00:00,S2,2,+1\n"),
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWD,1,1,1,1,1,0,0,20260401,20270231\n",
    "calendar_dates.txt": "service_id,date,exception_type\nWD,20260505,2\nWD,00010101,2\nWD,20260506,1\n",
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs\nT1,06:00:00,09:00:00,600\n",
    "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\r\nSH,43.3,141.4,1\r\n",
    "transfers.txt": "\ufefffrom_stop_id,to_stop_id,transfer_type\nS1,S2,0\n",
    "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang\nみなと,https://example.jp,ja\n\n",
    "fare_attributes.txt": "fare_id,price,currency_type,payment_method,transfers\n\"F1\",200,JPY,0,0\n",
    "levels.txt": "level_id,level_index\nL1,0\n",
}


def test_member_already_in_canonical_text_is_copied_as_received_and_every_member_is_the_same_bytes(ws, tmp_path, monkeypatch):
    """Copying a member as received must give exactly the bytes rendering its canonical rows gives (else it is rendered)."""
    import warehouse.export as export
    from noriba.pipeline import run_feed

    feed = tmp_path / "feed.zip"
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in _TRICKY.items():
            zf.writestr(name, text.encode("utf-8"))
    spec = make_spec("tricky", feed, policy={"block": []})  # errors on purpose; the export is still built
    copied: list[str] = []
    known: list[str] = []
    real, real_known = export.copy_if_verbatim, export.known_verbatim
    monkeypatch.setattr(export, "copy_if_verbatim", lambda *a: (copied.append(a[1]) or True) if real(*a) else False)
    monkeypatch.setattr(export, "known_verbatim", lambda *a: (known.append(a[1]) or True) if real_known(*a) else False)
    out = run_feed(spec, ws)  # the parse's facts (transforms.verbatim) say which members are plain: none is read again
    with zipfile.ZipFile(out["exports"]["gtfs_zip"]) as zf:
        fast = {n: zf.read(n) for n in zf.namelist()}
        raw = {i.filename: i.compress_size for i in zf.infolist()}
    plain = ["agency.txt", "calendar.txt", "frequencies.txt", "trips.txt"]
    assert sorted(known) == plain and copied == []
    again = export.export_version(ws, "tricky", out["feed_version"])  # no facts (another process): checked by reading
    with zipfile.ZipFile(again["gtfs_zip"]) as zf:
        checked = {n: zf.read(n) for n in zf.namelist()}
    assert sorted(copied) == plain
    monkeypatch.setattr(export, "copy_if_verbatim", lambda *a: False)
    again = export.export_version(ws, "tricky", out["feed_version"])
    with zipfile.ZipFile(again["gtfs_zip"]) as zf:
        slow = {n: zf.read(n) for n in zf.namelist()}
    assert fast == slow == checked
    assert list(fast) == list(slow), "the same member order"
    with zipfile.ZipFile(feed) as zf:
        assert all(raw[n] == zf.getinfo(n).compress_size for n in plain), "copied members keep their compressed bytes"


def test_unknown_files_come_back_row_for_row_in_their_order(ws, tmp_path):
    from noriba.pipeline import run_feed

    extra = {"vendor.txt": 'k,v,w\n2,"a, b",\n1,あ,"x""y"\n3,,\n', "zz_notes.txt": "note\nfirst\n\nthird\n", "empty_x.txt": "a,b\n"}
    result = run_feed(make_spec("unk", write_feed(tmp_path / "in", {**MINI_FEED, **extra})), ws)
    with zipfile.ZipFile(result["exports"]["gtfs_zip"]) as zf:
        assert zf.read("vendor.txt").decode("utf-8") == 'k,v,w\n2,"a, b",\n1,あ,"x""y"\n3,,\n'
        assert zf.read("zz_notes.txt").decode("utf-8") == "note\nfirst\nthird\n"  # the blank line is skipped (empty_row)
        assert zf.read("empty_x.txt").decode("utf-8") == "a,b\n"


def test_member_with_bytes_that_are_not_utf8_is_rendered_not_copied(ws, tmp_path, monkeypatch):
    """A spec's `encoding: utf-8` replaces bad bytes with U+FFFD; the export has the replaced text, not the input's bytes."""
    import warehouse.export as export
    from noriba.pipeline import run_feed

    feed = tmp_path / "feed.zip"
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in MINI_FEED.items():
            if name != "trips.txt":
                zf.writestr(name, text.encode("utf-8"))
        zf.writestr("trips.txt", b"route_id,service_id,trip_id,trip_headsign\nR1,WD,T1,\xe6\xb8\xaf\xff\n")
    copied: list[str] = []
    real, real_known = export.copy_if_verbatim, export.known_verbatim
    monkeypatch.setattr(export, "copy_if_verbatim", lambda *a: (copied.append(a[1]) or True) if real(*a) else False)
    monkeypatch.setattr(export, "known_verbatim", lambda *a: (copied.append(a[1]) or True) if real_known(*a) else False)
    out = run_feed(make_spec("bad8", feed, encoding="utf-8", policy={"block": []}), ws)
    with zipfile.ZipFile(out["exports"]["gtfs_zip"]) as zf:
        assert zf.read("trips.txt").decode("utf-8") == "route_id,service_id,trip_id,trip_headsign\nR1,WD,T1,港\ufffd\n"
    assert "trips.txt" not in copied and "stop_times.txt" in copied


def test_unknown_files_written_a_few_rows_at_a_time_come_back_whole_and_in_order(tmp_path):
    import duckdb

    from warehouse.export import _write_other_files

    con = duckdb.connect()
    rows = [("b.txt", i, '["k"]', '{"k": "%d"}' % i) for i in range(7)] + [("a.txt", 9, '["x","y"]', '{"x": "あ", "y": "1,2"}')]
    con.execute("CREATE TABLE o (file_name VARCHAR, _line INTEGER, header VARCHAR, record VARCHAR)")
    con.executemany("INSERT INTO o VALUES (?, ?, ?, ?)", rows[::-1])
    _write_other_files(con, "o", lambda n: tmp_path / n, batch_rows=3)
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "k\n" + "".join(f"{i}\n" for i in range(7))
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == 'x,y\nあ,"1,2"\n'


def test_export_duckdb_memory_is_bounded_and_spills_inside_the_export_folder(tmp_path, monkeypatch):
    from warehouse.export import bounded_connection

    monkeypatch.setenv("NORIBA_EXPORT_MEMORY", "300MB")
    con = bounded_connection(tmp_path / "spill")
    limit, spill = con.sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB") and spill == str(tmp_path / "spill")


def test_export_parquet_has_the_rows_and_types_duckdb_would_write(tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from warehouse.export import write_export_parquet

    lake = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"_line": pa.array([2, 3, 4], pa.int32()), "stop_id": ["S1", "S2", None],
                             "stop_lat": pa.array([35.1, None, 35.3]), "start_date": pa.array([1, 2, 3], pa.date32()),
                             "_extra": pa.array([None, None, None], pa.string())}), lake, row_group_size=2)
    assert write_export_parquet(lake, tmp_path / "ours.parquet", feed_id="mini", feed_version="v1")
    duckdb.connect().execute(f"COPY (SELECT 'mini' AS feed_id, 'v1' AS feed_version, * FROM read_parquet('{lake}', "
                             f"hive_partitioning=false)) TO '{tmp_path / 'duck.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    ours, duck = pq.read_table(tmp_path / "ours.parquet"), pq.read_table(tmp_path / "duck.parquet")
    assert ours.schema.equals(duck.schema) and ours.equals(duck)  # nullability too: _line has no null, stop_id has
    assert not ours.schema.field("_line").nullable and ours.schema.field("stop_id").nullable


def test_export_parquet_does_not_read_columns_null_in_every_row(tmp_path, monkeypatch):
    """A column the lake's statistics show null in every row is made as nulls, not decoded; the file is the same."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from warehouse.export import write_export_parquet

    lake = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"_line": pa.array([2, 3, 4], pa.int32()), "stop_id": ["S1", "S2", None],
                             "timepoint": pa.array([None, None, None], pa.int32()), "_extra": pa.array([None, None, None], pa.string()),
                             "stop_lat": pa.array([None, None, None], pa.float64())}), lake, row_group_size=2)
    asked = []
    iter_batches = pq.ParquetFile.iter_batches

    def recording(self, *a, **k):
        asked.append(k.get("columns"))
        return iter_batches(self, *a, **k)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording)
    assert write_export_parquet(lake, tmp_path / "ours.parquet", feed_id="mini", feed_version="v1")
    assert asked == [["_line", "stop_id"]]
    duckdb.connect().execute(f"COPY (SELECT 'mini' AS feed_id, 'v1' AS feed_version, * FROM read_parquet('{lake}', "
                             f"hive_partitioning=false)) TO '{tmp_path / 'duck.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    ours, duck = pq.read_table(tmp_path / "ours.parquet"), pq.read_table(tmp_path / "duck.parquet")
    assert ours.schema.equals(duck.schema) and ours.equals(duck)


def test_export_parquet_of_an_empty_table_keeps_its_columns_and_other_types_are_left_to_duckdb(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from warehouse.export import write_export_parquet

    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"_line": pa.array([], pa.int32()), "fare_id": pa.array([], pa.string())}), empty)
    assert write_export_parquet(empty, tmp_path / "out.parquet", feed_id="f", feed_version="v")
    assert pq.read_table(tmp_path / "out.parquet").column_names == ["feed_id", "feed_version", "_line", "fare_id"]
    odd = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"_line": pa.array([1], pa.int64())}), odd)
    assert not write_export_parquet(odd, tmp_path / "odd-out.parquet", feed_id="f", feed_version="v")
    assert not (tmp_path / "odd-out.parquet").exists()


def test_export_parquet_does_not_import_pandas(tmp_path):
    """pyarrow's conversion of Python values imports pandas (~0.15 s); an ingest never needs it."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.conftest import ROOT

    pq.write_table(pa.table({"_line": pa.array([2, 3], pa.int32()), "stop_id": ["S1", "S2"]}), tmp_path / "part-0.parquet")
    code = ("import sys; from pathlib import Path; from warehouse.export import write_export_parquet; "
            f"write_export_parquet(Path({str(tmp_path / 'part-0.parquet')!r}), Path({str(tmp_path / 'out.parquet')!r}), "
            "feed_id='港', feed_version='v1'); print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
    assert pq.read_table(tmp_path / "out.parquet").column("feed_id").to_pylist() == ["港", "港"]
