"""Spec schedules, checked the way Airflow parses a DAG's ``schedule`` string, without importing Airflow.

Airflow 3 (airflow.sdk.definitions.dag._create_timetable) turns ``None`` into a manual-only DAG,
``@once`` and ``@continuous`` into their timetables, and any other text into a cron timetable: the
presets below are replaced by their cron expression and the result must satisfy ``croniter``, or
the DAG file fails to import (AirflowTimetableInvalid). This module applies the same test.
"""

from __future__ import annotations

from croniter import croniter

from transforms.specfile import shown

#: airflow.sdk.definitions.timetables._cron.CRON_PRESETS (Airflow 3.3); keep in sync.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
#: Schedules that are not clock times (a DAG scheduled on Assets cannot also use them).
ONCE_PRESETS = ("@once", "@continuous")


def schedule_problem(value: object) -> str | None:
    """Return what is wrong with a spec's ``schedule``, or None when Airflow accepts it."""
    if value is None or value in ONCE_PRESETS:
        return None
    if isinstance(value, str) and value.strip() == value and value:
        try:
            croniter(CRON_PRESETS.get(value, value))
            return None
        except (ValueError, TypeError, KeyError, IndexError):  # CroniterBadCronError and friends are ValueErrors
            pass
    presets = ", ".join((*ONCE_PRESETS, *CRON_PRESETS))
    return (f"{shown(value)} is not a cron expression (e.g. '0 5 * * *': minute hour day month weekday) or one of "
            f"{presets}, or null (run when triggered)")
