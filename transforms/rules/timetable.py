"""Rules raised while a timetable spreadsheet is read (transforms.timetable.adapter).

Listed here so every code has one entry with its severity, explanation and fix. Locations are
given in Excel notation (file, sheet!cell) in each notice's message.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Rule


def _read(code: str, severity: str, why: str, *fields: str, fix: str = "") -> Rule:
    return Rule(code=code, severity=severity, why=why, fields=fields or ("file",), stage="read", fix=fix)


RULES: list[Rule] = [
    _read("timetable_invalid_time", ERROR, "A timetable cell is neither a time nor a known marker; that stop time is quarantined.",
          "file", "value", fix="Write the time as 5:30, 05:30 or 530, or use a marker declared in markers (レ, =)."),
    _read("timetable_backwards_trip", ERROR, "A trip's times go backwards; the whole trip is quarantined, never reordered.",
          "file", fix="Correct the time at the cell named; a trip past midnight is written 24:10 or later."),
    _read("timetable_stop_not_matched", ERROR, "A stop name in the timetable matches no stop (or several) in the stop list; "
          "its times are quarantined.", "file", "value",
          fix="Correct the name, add the stop to the stop list, or declare it in stops.overrides."),
    _read("timetable_stop_not_in_stop_list", ERROR, "A stop id from the pattern/fare table or an override is not in the stop list.",
          "file", "value", fix="Add the stop to the stop list or correct the id."),
    _read("timetable_stop_without_coordinates", ERROR, "A stop used by trips has no coordinates in the stop list.", "file", "value",
          fix="Add latitude and longitude (or plane rectangular x/y with stops.crs)."),
    _read("timetable_trip_too_short", WARNING, "A trip has only one readable stop time; it is quarantined.", "file"),
    _read("timetable_no_sheet_selected", ERROR, "No sheet of a workbook matches sheets.include/exclude.", "file",
          fix="Check the sheet name patterns in the spec."),
    _read("timetable_no_service", ERROR, "A sheet has no service (workbooks[].service or sheets.rules).", "file"),
    _read("timetable_sheet_without_trips", INFO, "A selected sheet holds no trip times; it is skipped.", "file"),
    _read("timetable_sheet_without_stops", ERROR, "A sheet has times but no stop names where the layout says.", "file",
          fix="Check layout.stop_column and layout.first_stop_row."),
    _read("timetable_no_trips", ERROR, "No trip was read from any timetable.", "file", fix="Check sheets and layout in the spec."),
    _read("timetable_invalid_fare", ERROR, "A fare table cell is not a number of yen.", "file"),
    _read("timetable_fare_stop_unknown", WARNING, "A fare names a stop that is not in the stop list; the fare is skipped.", "file"),
    _read("timetable_fare_conflict", WARNING, "A route's fare table gives two fares between the same two zones (a loop passes a "
          "stop twice); GTFS fare_rules can hold one, the first is kept.", "file"),
    _read("timetable_read_summary", INFO, "How many time cells were read, and how many became stop times, were merged "
          "(a stop on two rows) or were quarantined.", "file"),
    _read("timetable_unused_service", INFO, "A service declared in calendar.services has no trips.", "file"),
]
