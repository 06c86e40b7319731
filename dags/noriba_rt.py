"""Noriba realtime DAG: every hour, parse what the archiver wrote into the lake and publish it (schema ``rt``).

One DAG mapped over the gtfs-rt specs of ``specs/feeds`` (the feed id is the map label). The
archiver itself is a long-running process (``noriba rt archive``, the ``noriba-rt-archiver``
service of docker/docker-compose.yaml), not a task. Each run parses every hour of a feed whose
lake partitions are missing or older than its raw snapshots (the hour just ended, the current
one so far, and any hour a failed run left behind), replacing them whole, then publishes them
through the one-slot pool ``noriba_publish`` (DuckDB has a single writer), then checks them
(MobilityData's realtime rules into ``rt.notices``, the match to the static feed into
``marts.rt_match_hourly``). The tasks call the same functions as ``noriba rt parse``,
``noriba rt validate`` and ``noriba rt match``. Only the spec loader is imported here.

GBFS systems the archiver polls (kind gbfs with source.url) get one more mapped task, in the same
pool: ``ingest_gbfs`` ingests and publishes what was archived under ``raw/<feed>/archive`` (files
already ingested are skipped), as ``noriba gbfs ingest-archive FEED`` does.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag, task

from noriba.specs import load_each, load_rt_specs

DEFAULT_ARGS = {"owner": "noriba", "retries": 2,
                "retry_delay": timedelta(seconds=int(os.environ.get("NORIBA_RETRY_DELAY_S", "120")))}
PUBLISH_POOL = "noriba_publish"


@dag(
    dag_id="noriba_rt",
    description="Parse each realtime feed's archived hours into the lake and publish them (schema rt), mapped over the gtfs-rt specs",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["noriba", "realtime", "mapped"],
)
def noriba_rt():
    @task
    def feed_ids() -> list[str]:
        return [s.id for s in load_rt_specs()[0]]  # a spec with a mistake: dags/noriba_spec_errors.py names it

    @task(map_index_template="{{ task.op_kwargs['feed_id'] }}")
    def parse(feed_id: str) -> dict:
        from noriba import rt
        from warehouse.workspace import Workspace

        res = rt.parse_feed(Workspace.from_env(), feed_id, publish=False)
        return {"feed_id": feed_id, "hours": res["hours"]}

    @task(pool=PUBLISH_POOL, map_index_template="{{ task.op_kwargs['parsed']['feed_id'] }}")
    def publish(parsed: dict) -> dict:
        from noriba import rt
        from warehouse.workspace import Workspace

        if not parsed["hours"]:
            return {**parsed, "published": {}}
        return rt.publish_hours(Workspace.from_env(), parsed["feed_id"], parsed["hours"])

    @task(pool=PUBLISH_POOL, map_index_template="{{ task.op_kwargs['published']['feed_id'] }}")
    def check(published: dict) -> dict:
        """Validate the hours just published (MobilityData's realtime rules) and refresh marts.rt_match_hourly and the realtime marts."""
        from noriba.rt_match import match_feed
        from noriba.rt_validate import validate_hours
        from warehouse.rt_marts import build_feed_marts
        from warehouse.workspace import Workspace

        if not published["hours"]:
            return {"feed_id": published["feed_id"], "validated": {}}
        ws = Workspace.from_env()
        validated = validate_hours(ws, published["feed_id"], published["hours"])
        match_feed(ws, published["feed_id"])
        build_feed_marts(ws, published["feed_id"])  # marts.rt_stop_events, rt_on_time_performance, ... (warehouse/rt_marts.py)
        return {"feed_id": published["feed_id"], "validated": validated}

    check.expand(published=publish.expand(parsed=parse.expand(feed_id=feed_ids())))

    @task
    def gbfs_feed_ids() -> list[str]:
        return [s.id for s in load_each("feeds")[0] if s.kind == "gbfs" and s.source.url]

    @task(pool=PUBLISH_POOL, map_index_template="{{ task.op_kwargs['feed_id'] }}")
    def ingest_gbfs(feed_id: str) -> dict:
        """Ingest and publish what the archiver kept of a GBFS system since the last run."""
        from noriba import gbfs
        from noriba.specs import load_each
        from warehouse.workspace import Workspace

        spec = next((s for s in load_each("feeds")[0] if s.id == feed_id), None)
        res = gbfs.ingest_archive(Workspace.from_env(), feed_id, spec=spec)
        return {"feed_id": feed_id, "status": res.get("status"), "message": res.get("message")}

    ingest_gbfs.expand(feed_id=gbfs_feed_ids())


noriba_rt()
