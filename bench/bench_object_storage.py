"""What NORIBA_HOME on object storage costs: the same `noriba ingest` with a local home and with s3:// on a moto server.

Input: ../shared/data/gtfs/world/vilnius-2015 (445,217 stop_times). In the same run, alternating:
- **local**: `noriba ingest --no-export` with NORIBA_HOME a folder (the baseline);
- **s3**: the same with NORIBA_HOME=s3://bench/home on a moto S3 server on 127.0.0.1 (a new bucket
  prefix and an empty NORIBA_CACHE each round, so every object is uploaded);
- **s3 rerun**: the s3 command again (input unchanged: fetch, look-ups, nothing sent);
- **second machine**: `noriba publish --no-contracts` from the bucket with another empty NORIBA_CACHE.
Each command is its own process; wall time includes imports; peak memory is that process's max RSS.

    uv run python bench/bench_object_storage.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "gtfs" / "world" / "vilnius-2015" / "gtfs.zip"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """Return (wall seconds, peak MB) of one noriba command; fail loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    import pyarrow.fs as pafs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="noriba-bench-s3-"))
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="bench", secret_key="bench",
                               region="us-east-1", allow_bucket_creation=True)
        fs.create_dir("bench")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NORIBA_"))}
        ingest = ["ingest", str(SOURCE), "--id", "vilnius", "--no-export", "--quiet", "--date", "2015-06-01"]
        results: dict[str, list[tuple[float, float]]] = {"local": [], "s3": [], "s3 rerun": [], "second machine": []}
        for i in range(args.repeat):
            shutil.rmtree(work / "local", ignore_errors=True)
            results["local"].append(timed(ingest, {**base, "NORIBA_HOME": str(work / "local")}))
            s3 = {**base, **CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                  "NORIBA_HOME": f"s3://bench/round-{i}", "NORIBA_CACHE": str(work / f"cache-{i}")}
            results["s3"].append(timed(ingest, s3))
            results["s3 rerun"].append(timed(ingest, s3))
            results["second machine"].append(timed(["publish", "--no-contracts"], {**s3, "NORIBA_CACHE": str(work / f"cache-{i}-b")}))
        objects = [i for i in fs.get_file_info(pafs.FileSelector("bench/round-0", recursive=True)) if i.is_file]
        print(f"objects per run: {len(objects)}, {sum(i.size for i in objects) / 1e6:.1f} MB")
        best_local = min(w for w, _ in results["local"])
        print("| step | best wall | median wall | peak RSS | × local (best) |")
        print("|---|---|---|---|---|")
        for name, runs in results.items():
            walls = sorted(w for w, _ in runs)
            print(f"| {name} | {walls[0]:.2f} s | {walls[len(walls) // 2]:.2f} s | {max(m for _, m in runs):.0f} MB | "
                  f"{walls[0] / best_local:.2f} |")
    finally:
        moto.terminate()
        try:
            moto.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto.kill()
            moto.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
