"""Noriba trip DAGs, generated from ``specs/trips/*.yml``: one DAG per zone layer and per trips source.

A zones DAG publishes its layer into ``trips.zones`` and marks the layer's Asset. A trips DAG runs
fetch → parse_validate → write_lake → publish → export, each task calling ``noriba.tasks``, the same
steps ``noriba trips`` chains (``noriba.trips_pipeline.run_trips``). A source that assigns zones or
municipalities is scheduled on its layers' Assets (and on its own ``schedule`` if it has one), so a
layer is in the warehouse before the trips that use it, chained by data, not by clock times.
Publishing goes through the one-slot pool ``noriba_publish`` (DuckDB has a single writer); publish
marks the source's Asset. Only the spec loader (PyYAML) is imported here. A spec with a mistake
costs only its own DAG; the mistakes (file and field) are the import error of dags/noriba_spec_errors.py.
"""

from __future__ import annotations

import functools
import operator
from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from noriba.specs import load_each
from transforms.trips.spec import layers

DEFAULT_ARGS = {"owner": "noriba", "retries": 2, "retry_delay": timedelta(minutes=2)}
PUBLISH_POOL = "noriba_publish"


def zones_asset(layer_id: str) -> Asset:
    """Return the Asset updated each time a zone layer is published."""
    return Asset(name=f"noriba_zones_{layer_id}", uri=f"noriba://warehouse/trips/zones/{layer_id}")


def trips_asset(source_id: str) -> Asset:
    """Return the Asset updated each time a trips source's version is published."""
    return Asset(name=f"noriba_trips_{source_id}", uri=f"noriba://warehouse/trips/{source_id}")


def trips_schedule(spec):
    """Return the DAG schedule of a trips source: its layers' Assets (all of them), or them or its cron, or its cron."""
    used = layers(spec.options)
    if not used:
        return spec.schedule
    assets = functools.reduce(operator.and_, [zones_asset(x) for x in used]) if len(used) > 1 else zones_asset(used[0])
    if not spec.schedule:
        return assets
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(spec.schedule, timezone=spec.timezone), assets=assets)


def build_zones_dag(spec):
    layer_id = spec.id

    @dag(
        dag_id=f"noriba_zones__{layer_id}",
        description=f"Publish the zone layer {spec.name}",
        schedule=spec.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["noriba", "zones", *spec.tags],
    )
    def zones_dag():
        @task(pool=PUBLISH_POOL, outlets=[zones_asset(layer_id)])
        def publish() -> dict:
            from noriba import tasks

            return tasks.publish_zones(layer_id)

        publish()

    return zones_dag()


def build_trips_dag(spec):
    source_id = spec.id

    @dag(
        dag_id=f"noriba_trips__{source_id}",
        description=f"Ingest the trips {spec.name} ({spec.source.describe()})",
        schedule=trips_schedule(spec),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["noriba", "trips", *spec.tags],
    )
    def trips_dag():
        @task
        def fetch() -> dict:
            from noriba import tasks

            return tasks.trips_fetch(source_id)

        @task
        def parse_validate(fetched: dict) -> dict:
            from noriba import tasks

            return tasks.trips_parse_validate(source_id, fetched)

        @task
        def write_lake(staged: dict) -> dict:
            from noriba import tasks

            return tasks.trips_write_lake(staged)

        @task(pool=PUBLISH_POOL, outlets=[trips_asset(source_id)])
        def publish(lake: dict) -> dict:
            from noriba import tasks

            return tasks.trips_publish(lake)

        @task
        def export(published: dict) -> dict:
            from noriba import tasks

            return tasks.trips_export(published)

        export(publish(write_lake(parse_validate(fetch()))))

    return trips_dag()


TRIP_SPECS, _ = load_each("trips")  # the mistakes of the others: dags/noriba_spec_errors.py

for _spec in TRIP_SPECS:
    (build_zones_dag if _spec.kind == "zones" else build_trips_dag)(_spec)
