"""Timetable sources: spreadsheets, stop lists and fare tables turned into GTFS-JP text tables.

Modules: :mod:`.workbook` (xls/xlsx/csv sheets, merged cells, Excel cell notation),
:mod:`.times` (time cells), :mod:`.layout` (trips across columns or down rows),
:mod:`.stops` (stop lists, P11, normalised name matching), :mod:`.odpt` (ODPT route patterns),
:mod:`.fares` (対キロ triangle and flat fares), :mod:`.calendar` (services and Japanese
holidays), :mod:`.config` (the spec's ``timetable:`` section) and :mod:`.adapter` (the
``timetable`` source kind). Pure Python; no Airflow import.
"""
