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
