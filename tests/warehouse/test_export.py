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
