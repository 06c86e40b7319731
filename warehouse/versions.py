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


#: meta.feed_versions columns a kind's publish of many sources sets (GBFS, trips): the rest stay NULL.
_ROW_COLUMNS = ("feed_id", "feed_version", "content_sha256", "source_sha256", "source", "fetched_at", "ingested_at", "kind",
                "profile", "files", "rows_in", "rows_accepted", "rows_quarantined", "errors", "warnings", "infos", "notice_codes",
                "spec", "published_at", "service_start", "service_end")


def insert_feed_version(con, *, feed_id: str, version: str, kind: str, meta: dict, published_at: str, service: tuple) -> None:
    """Insert the meta.feed_versions row of a GBFS or trips publish: ``version`` is its content and version id, ``meta`` holds
    source_sha256, source, fetched_at, ingested_at, files, the row counts, the notice counts, notice_codes and spec;
    ``service`` is (service_start, service_end)."""
    values = [feed_id, version, version, meta["source_sha256"], meta["source"], meta["fetched_at"], meta["ingested_at"], kind,
              kind, meta["files"], meta["rows_in"], meta["rows_accepted"], meta["rows_quarantined"], meta["errors"],
              meta["warnings"], meta["infos"], meta["notice_codes"], meta["spec"], published_at, *service]
    con.execute(f"INSERT INTO meta.feed_versions ({', '.join(_ROW_COLUMNS)}) VALUES ({', '.join('?' * len(values))})", values)

