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
