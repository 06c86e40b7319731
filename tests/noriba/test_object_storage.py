"""NORIBA_HOME on object storage (warehouse/storage.py), against a real S3-compatible server (moto) on 127.0.0.1.

The same real feeds are ingested with a local NORIBA_HOME and with NORIBA_HOME=s3://…; the warehouses
must be equal (rows and a checksum per table), the raw archive, lake and exports must be in the bucket,
a second machine (another empty working folder) must publish the same warehouse from the bucket, and a
rerun must change nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared

sys.path.insert(0, str(ROOT / "docker"))
from local_cluster import warehouse_checksums  # noqa: E402

pytestmark = pytest.mark.realdata

CORPUS = ("gtfs", "jp", "corpus-2019", "feeds")
#: feed id -> its path under ../shared/data: two GTFS-JP zips and a GTFS-Flex feed (a folder: zones and booking rules)
FEEDS = {"tosen": (*CORPUS, "402303tosengtfs.zip"), "tsu-airport": (*CORPUS, "GTFS_TSUAIRPORTLINE.zip"),
         "uckermark": ("gtfs", "flex", "de-uckermark-rufbus")}
#: feeds run from a spec whose policy blocks nothing: the shared Flex feed carries draft-era errors (docs/validation-parity.md)
REPORTED = {"uckermark"}
BUCKET = "noriba-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """Yield the endpoint URL of a moto S3 server on 127.0.0.1 with an empty bucket; stop it by its PID after."""
    import pyarrow.fs as pafs

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="testing", secret_key="testing",
                          region="us-east-1", allow_bucket_creation=True).create_dir(BUCKET)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _env(**extra) -> dict:
    """Return this process's environment without AWS_* and NORIBA_* variables, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NORIBA_"))}, **extra}


def noriba(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noriba.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _ingest_all(env: dict) -> list[str]:
    import json
    import tempfile

    out = []
    for fid, parts in FEEDS.items():
        if fid in REPORTED:
            specs = Path(tempfile.mkdtemp(prefix="noriba-specs-"))
            (specs / "feeds").mkdir()
            (specs / "feeds" / f"{fid}.yml").write_text(f"id: {fid}\nkind: gtfs\nsource:\n  path: {json.dumps(str(shared(*parts)))}\n"
                                                       "publish: true\npolicy:\n  block: []\n", encoding="utf-8")
            proc = noriba("run", "--specs", str(specs), "--date", "2019-06-01", "--quiet", env=env)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out.append(proc.stdout + proc.stderr)
            continue
        proc = noriba("ingest", str(shared(*parts)), "--id", fid, "--publish", "--date", "2019-06-01", "--quiet", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out.append(proc.stdout + proc.stderr)
    return out


def _objects(endpoint: str) -> dict[str, tuple[int, int]]:
    """Return {key: (size, mtime_ns)} of every object in the bucket."""
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=endpoint.split("//")[1], scheme="http", access_key="testing", secret_key="testing",
                           region="us-east-1")
    return {i.path.split("/", 1)[1]: (i.size, i.mtime_ns)
            for i in fs.get_file_info(pafs.FileSelector(BUCKET, recursive=True)) if i.is_file}


@pytest.fixture(scope="module")
def runs(s3, tmp_path_factory):
    base = tmp_path_factory.mktemp("homes")
    s3_env = _env(NORIBA_HOME=f"s3://{BUCKET}/home", NORIBA_CACHE=str(base / "cache-a"), AWS_ENDPOINT_URL=s3, **CREDENTIALS)
    _ingest_all(_env(NORIBA_HOME=str(base / "local")))
    _ingest_all(s3_env)
    return {"local": base / "local", "cache": base / "cache-a", "base": base, "s3_env": s3_env, "endpoint": s3}


def test_s3_home_gives_the_same_warehouse_as_a_local_home(runs):
    local = warehouse_checksums(runs["local"] / "noriba.duckdb")
    assert local["gtfs.stop_times"][0] > 0 and local["quality.expectation_results"][0] > 0
    assert warehouse_checksums(runs["cache"] / "noriba.duckdb") == local


def test_raw_lake_and_exports_are_in_the_bucket(runs):
    keys = set(_objects(runs["endpoint"]))
    local = runs["local"]
    for folder in ("raw", "lake", "exports"):
        want = {f"home/{p.relative_to(local).as_posix()}" for p in (local / folder).rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(local).parts)}
        assert want and want <= keys, f"{folder}: not in the bucket: {sorted(want - keys)[:5]}"
    assert any(k.startswith("home/lake/meta_feed_versions/feed_id=tosen/feed_version=") for k in keys)
    assert not any("/." in k for k in keys), "a temporary file was uploaded"


def test_lake_raw_path_names_the_archive_in_the_bucket(runs):
    import duckdb

    con = duckdb.connect(str(runs["cache"] / "noriba.duckdb"), read_only=True)
    try:
        paths = [p for (p,) in con.sql("SELECT raw_path FROM meta.feed_versions").fetchall()]
    finally:
        con.close()
    assert len(paths) == len(FEEDS) and all(p.startswith(f"s3://{BUCKET}/home/raw/") for p in paths), paths


def test_second_machine_publishes_the_same_warehouse_from_the_bucket(runs):
    env = {**runs["s3_env"], "NORIBA_CACHE": str(runs["base"] / "cache-b")}
    proc = noriba("publish", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert said.count(" published (") == len(FEEDS), said
    assert warehouse_checksums(runs["base"] / "cache-b" / "noriba.duckdb") == warehouse_checksums(runs["local"] / "noriba.duckdb")
    again = noriba("publish", env=env)
    assert again.returncode == 0 and (again.stdout + again.stderr).count("already published") == len(FEEDS), again.stderr
    export = noriba("export", "tosen", env=env)  # re-export on the second machine: from the lake as stored, into the bucket
    assert export.returncode == 0, export.stdout + export.stderr
    built = list((runs["base"] / "cache-b" / "exports" / "gtfs" / "tosen").glob("tosen_*.zip"))
    assert len(built) == 1
    stored = _objects(runs["endpoint"])[f"home/exports/gtfs/tosen/{built[0].name}"]
    assert stored == (built[0].stat().st_size, built[0].stat().st_mtime_ns), "the re-export was not sent to the bucket"


def test_second_machine_running_the_same_feeds_sends_nothing_new_to_the_lake(runs):
    before = {k: v for k, v in _objects(runs["endpoint"]).items() if k.startswith(("home/raw/", "home/lake/"))}
    _ingest_all({**runs["s3_env"], "NORIBA_CACHE": str(runs["base"] / "cache-c")})
    after = {k: v for k, v in _objects(runs["endpoint"]).items() if k.startswith(("home/raw/", "home/lake/"))}
    assert after == before, "a second machine rewrote raw or lake objects of versions already stored"
    assert warehouse_checksums(runs["base"] / "cache-c" / "noriba.duckdb") == warehouse_checksums(runs["local"] / "noriba.duckdb")


def test_a_new_machine_serving_the_catalog_serves_the_stored_exports_and_keeps_the_stored_catalog_whole(runs, monkeypatch):
    """`noriba serve` on a new machine rebuilds the catalog (validity as of today) before serving: from the exports as
    stored, which it gets first, not from its empty working folder (which would have listed no download and sent that
    page over the stored one), and from the lake's Flex tables of the latest versions (the Flex feed stays listed with
    its zones and booking rules)."""
    import json

    import pyarrow.fs as pafs

    from noriba.exports import update_catalog
    from warehouse.workspace import Workspace

    env = {**runs["s3_env"], "NORIBA_CACHE": str(runs["base"] / "cache-serve")}
    for k, v in env.items():
        if k.startswith(("AWS_", "NORIBA_")):
            monkeypatch.setenv(k, v)
    fs = pafs.S3FileSystem(endpoint_override=runs["endpoint"].split("//")[1], scheme="http", access_key="testing",
                           secret_key="testing", region="us-east-1")

    def stored(name: str) -> str:
        with fs.open_input_stream(f"{BUCKET}/home/exports/{name}") as fh:
            return fh.read().decode("utf-8")

    before = {n: stored(n) for n in ("site/catalog.json", "site/files.json")}
    listed_ids = [x["noriba"]["id"] for x in json.loads(before["site/catalog.json"])["sources"]]
    assert len(listed_ids) == len(FEEDS), listed_ids  # ingested with --publish (or a spec saying publish): all listed
    assert '"flex"' in before["site/catalog.json"]  # the machine that ingested it listed the Flex feed as such
    ws = Workspace.from_env()
    update_catalog(ws)
    for fid in FEEDS:
        assert list((ws.exports / "gtfs" / fid).glob(f"{fid}_*.zip")), f"{fid}: the export was not got from the store to serve"

    def timeless(x):  # the listing without the times it was made at
        if isinstance(x, dict):
            return {k: timeless(v) for k, v in x.items() if k not in ("generated_at", "extracted_on")}
        return [timeless(v) for v in x] if isinstance(x, list) else x

    assert {n: timeless(json.loads(stored(n))) for n in before} == {n: timeless(json.loads(t)) for n, t in before.items()}


def test_rerun_on_s3_home_changes_nothing(runs):
    before = _objects(runs["endpoint"])
    wh = warehouse_checksums(runs["cache"] / "noriba.duckdb")
    for out in _ingest_all(runs["s3_env"]):
        assert "nothing to do" in out, out
    assert _objects(runs["endpoint"]) == before
    assert warehouse_checksums(runs["cache"] / "noriba.duckdb") == wh


def test_s3_home_without_credentials_is_refused_in_one_line(tmp_path):
    feed = shared(*FEEDS["tosen"])
    proc = noriba("ingest", str(feed), "--quiet", env=_env(NORIBA_HOME=f"s3://{BUCKET}/home", NORIBA_CACHE=str(tmp_path / "c")))
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert "no credentials" in lines[0] and "AWS_ACCESS_KEY_ID" in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "c").exists(), "the working folder was made before the store was checked"


def test_s3_home_whose_store_does_not_answer_is_refused_in_one_line(tmp_path):
    env = _env(NORIBA_HOME=f"s3://{BUCKET}/home", NORIBA_CACHE=str(tmp_path / "c"),
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{_free_port()}", **CREDENTIALS)
    proc = noriba("status", env=env)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert "did not answer" in lines[0] and "testing" not in lines[0]


def test_s3_home_with_a_missing_bucket_is_refused_in_one_line(s3, tmp_path):
    env = _env(NORIBA_HOME="s3://no-such-bucket/home", NORIBA_CACHE=str(tmp_path / "c"), AWS_ENDPOINT_URL=s3, **CREDENTIALS)
    proc = noriba("publish", env=env)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "no bucket no-such-bucket" in lines[0], lines


@pytest.mark.parametrize("url", ["http://example.org/x", "s3://Bad_Bucket/x", "s3://user:secret@bucket/x", "s3://bucket/a/../b",
                                 "s3://bucket/x?versionId=1"])
def test_home_url_that_is_not_a_plain_bucket_and_prefix_is_refused(url):
    from warehouse.storage import Remote, StorageError

    with pytest.raises(StorageError) as exc:
        Remote.parse(url)
    assert "secret" not in str(exc.value)


@pytest.mark.parametrize("rel", ["../x", "lake/../../x", "/lake/x", "lake//x", "lake/./x", "reports/x", "noriba.duckdb", "lake\\..\\x"])
def test_object_key_outside_the_durable_folders_is_refused(rel):
    from warehouse.storage import Remote, StorageError

    with pytest.raises(StorageError):
        Remote.parse("s3://bucket/home").key(rel)


def test_listed_keys_that_would_leave_the_working_folder_are_not_downloaded(s3, tmp_path, monkeypatch):
    import pyarrow.fs as pafs

    from warehouse import storage
    from warehouse.workspace import Workspace

    for k, v in {**CREDENTIALS, "AWS_ENDPOINT_URL": s3, "NORIBA_CACHE": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    fs = pafs.S3FileSystem(endpoint_override=s3.split("//")[1], scheme="http", access_key="testing", secret_key="testing",
                           region="us-east-1")
    for key in ("hostile/lake/t/ok/part-0.parquet", "hostile/lake/t/.hidden/part-0.parquet", "hostile/lake/t/a\\..\\..\\b"):
        with fs.open_output_stream(f"{BUCKET}/{key}") as out:
            out.write(b"x")
    ws = Workspace.from_env(f"s3://{BUCKET}/hostile")
    assert storage.pull(ws, ws.lake) == 1
    assert sorted(p.relative_to(ws.home).as_posix() for p in ws.home.rglob("*") if p.is_file()) == ["lake/t/ok/part-0.parquet"]
