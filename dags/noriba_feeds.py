"""Noriba DAGs, generated from ``specs/feeds/*.yml``: one DAG per feed, plus one mapped over all feeds.

Each feed DAG runs fetch → parse_validate → write_lake → publish → export; every task calls
``noriba.tasks``, the same steps as the ``noriba`` CLI. When the input is unchanged and its version
is already published and exported, the tasks after fetch are skipped (and the Asset is not marked). Publishing goes through the one-slot pool
``noriba_publish`` (DuckDB has a single writer). Export marks the feed's Asset, so downstream
DAGs (merged exports, reports) are scheduled on data, not on clock times.
One export DAG per export spec (``specs/exports/*.yml``) is scheduled on the Assets of the feeds
it selects, so a new version of any input rebuilds the export; exports of feeds without a feed
spec (ingested ad hoc) have no Asset to wait for and run when triggered. Export DAGs are created
unpaused: Airflow drops an asset event for a DAG paused at the time (a triggered run catches up).
Only the spec loaders (PyYAML) are imported here; pipeline code is imported inside the tasks.
A spec with a mistake costs only its own DAG: every other spec's DAG is still built, and the
mistakes (file and field) are the import error of dags/noriba_spec_errors.py.
"""

from __future__ import annotations

import functools
import operator
import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from noriba.exports import export_feed_specs, load_export_each
from noriba.specs import load_each, load_specs

#: A failed task (a worker that died, a source that was down) is retried twice, NORIBA_RETRY_DELAY_S apart (default 2 min).
DEFAULT_ARGS = {"owner": "noriba", "retries": 2,
                "retry_delay": timedelta(seconds=int(os.environ.get("NORIBA_RETRY_DELAY_S", "120")))}
PUBLISH_POOL = "noriba_publish"


def feed_asset(feed_id: str) -> Asset:
    """Return the Asset updated each time a feed's new version is published and exported."""
    return Asset(name=f"noriba_feed_{feed_id}", uri=f"noriba://warehouse/gtfs/{feed_id}")


def nothing_to_do(staged: dict) -> bool:
    """Return whether a staged version needs no further step: unchanged, same verdict, published, contracts and export done.

    A version an interrupted run left unfinished (not published, no contract results, no export) is not skipped.
    """
    if not staged.get("unchanged") or staged.get("policy_changed"):
        return False
    from noriba.pipeline import unfinished_steps
    from warehouse.workspace import Workspace
    from warehouse.publish import is_published

    ws, fid, ver = Workspace.from_env(), staged["feed_id"], staged["feed_version"]
    return is_published(ws, fid, ver) and not unfinished_steps(ws, fid, ver)


def build_feed_dag(spec):
    feed_id = spec.id

    @dag(
        dag_id=f"noriba_feed__{feed_id}",
        description=f"Ingest {spec.name} ({spec.source.describe()})",
        schedule=spec.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["noriba", "feed", spec.kind, *spec.tags],
    )
    def feed_dag():
        @task
        def fetch() -> dict:
            from noriba import tasks

            return tasks.fetch(feed_id)

        @task
        def parse_validate(fetched: dict) -> dict:
            from noriba import tasks

            staged = tasks.parse_validate(feed_id, fetched)
            if nothing_to_do(staged):  # the rest shows as skipped, and the feed's Asset is not marked
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(f"{feed_id}: input unchanged, still version {staged['feed_version']} "
                                           "(published and exported); nothing to do")
            return staged

        @task
        def write_lake(staged: dict) -> dict:
            from noriba import tasks

            return tasks.write_lake(staged)

        @task(pool=PUBLISH_POOL)
        def publish(lake: dict) -> dict:
            from noriba import tasks

            return tasks.publish(lake)

        @task(pool=PUBLISH_POOL)
        def contracts(published: dict) -> dict:
            from noriba import tasks

            return tasks.contracts(published)

        @task(outlets=[feed_asset(feed_id)])
        def export(published: dict) -> dict:
            from noriba import tasks

            return tasks.export(published)

        export(contracts(publish(write_lake(parse_validate(fetch())))))

    return feed_dag()


SPECS, _ = load_each("feeds")  # the mistakes of the others: dags/noriba_spec_errors.py

for _spec in SPECS:
    if _spec.kind != "gbfs":  # GBFS systems are polled (noriba gbfs fetch), not run as feed versions
        build_feed_dag(_spec)


def export_asset(export_id: str) -> Asset:
    """Return the Asset updated each time an export is rebuilt."""
    return Asset(name=f"noriba_export_{export_id}", uri=f"noriba://exports/{export_id}")


def build_export_dag(spec, feed_specs):
    export_id = spec.id
    assets = [feed_asset(s.id) for s in export_feed_specs(spec, feed_specs)]
    schedule = functools.reduce(operator.or_, assets) if len(assets) > 1 else (assets or None)

    @dag(
        dag_id=f"noriba_export__{export_id}",
        description=f"Build the export {spec.name} when any of its feeds has a new version",
        schedule=schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        # Airflow queues an asset-triggered run only for DAGs unpaused when the event is recorded (an event
        # seen while paused is dropped for them), and an export with unchanged inputs does nothing: so unpaused.
        is_paused_upon_creation=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["noriba", "export"],
    )
    def export_dag():
        @task(outlets=[export_asset(export_id)])
        def build() -> dict:
            from noriba import tasks

            return tasks.build_export(export_id)

        build()

    return export_dag()


EXPORT_SPECS, _ = load_export_each()

for _export in EXPORT_SPECS:
    build_export_dag(_export, SPECS)


@dag(
    dag_id="noriba_all_feeds",
    description="Run every feed once, mapped over the specs (the feed id is the map label)",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["noriba", "mapped"],
)
def all_feeds():
    @task
    def feed_ids() -> list[str]:
        return [s.id for s in load_specs()]  # at run time: a spec with a mistake fails the run, naming it

    @task(map_index_template="{{ task.op_kwargs['feed_id'] }}")
    def ingest(feed_id: str) -> dict:
        from noriba import tasks

        return tasks.write_lake(tasks.parse_validate(feed_id, tasks.fetch(feed_id)))

    # the same steps as a feed DAG: publish, data contracts, export
    @task(pool=PUBLISH_POOL, map_index_template="{{ task.op_kwargs['lake']['feed_id'] }}")
    def publish_and_export(lake: dict) -> dict:
        from noriba import tasks

        return tasks.export(tasks.contracts(tasks.publish(lake)))

    publish_and_export.expand(lake=ingest.expand(feed_id=feed_ids()))


all_feeds()
