"""Airflow import error for spec mistakes: this file defines no DAG; it fails to import while a spec is wrong.

Airflow reports import errors per DAG file, and a file that raises loses every DAG it defines. So
dags/noriba_feeds.py and dags/noriba_trips.py build the DAGs of every valid spec and skip the
others, and this file raises with every mistake of the skipped ones (file, field, what is wrong),
so they show as one import error in the Airflow UI and in ``airflow dags list-import-errors``
while every other DAG keeps running.
"""

from __future__ import annotations

from noriba.exports import load_export_each
from noriba.specs import load_each


class SpecMistakes(Exception):
    """Some specs under specs/ are wrong; their DAGs were not built."""


PROBLEMS = [*load_each("feeds")[1], *load_each("trips")[1], *load_export_each()[1]]
if PROBLEMS:
    raise SpecMistakes(f"{len(PROBLEMS)} mistake(s) in specs; the DAGs of these files were not built "
                       "(every other DAG was):\n" + "\n".join(PROBLEMS))
