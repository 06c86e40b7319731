"""Which version of each feed the lake holds as its latest (read from the lake, no warehouse lock)."""

from __future__ import annotations

from warehouse.workspace import Workspace


def latest_versions(ws: Workspace, *, passing_only: bool = True) -> dict[str, dict]:
    """Return {feed_id: metadata row of its latest version} from the lake (no warehouse lock needed).

    If a version's severity policy blocked it (``policy_status`` = blocked), then the latest
    version that passed is returned instead, and ``newer_blocked`` lists the blocked ones.
    """
    import duckdb

    glob = ws.lake / "meta_feed_versions" / "feed_id=*" / "feed_version=*" / "part-0.parquet"
    if not list((ws.lake / "meta_feed_versions").glob("feed_id=*/feed_version=*/part-0.parquet")):
        return {}
    con = duckdb.connect()
    rows = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true, union_by_name=true) "
                   f"ORDER BY feed_id, ingested_at DESC, fetched_at DESC, feed_version").to_arrow_table().to_pylist()
    con.close()
    out: dict[str, dict] = {}
    blocked: dict[str, list[str]] = {}
    for r in rows:
        fid = r["feed_id"]
        if fid in out:
            continue
        if passing_only and r.get("policy_status") == "blocked":
            blocked.setdefault(fid, []).append(r["feed_version"])
            continue
        out[fid] = {**r, "newer_blocked": blocked.get(fid, [])}
    return out
