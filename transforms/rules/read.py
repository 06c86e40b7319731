"""Rules raised while a feed is read and typed (transforms.gtfs, transforms.encoding, transforms.canonical).

They are listed here so that every code Noriba can report has one entry with its severity and
explanation, for reports, the severity policy and the documentation.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Rule


def _read(code: str, severity: str, why: str, *fields: str, fix: str = "") -> Rule:
    return Rule(code=code, severity=severity, why=why, fields=fields or ("file",), stage="read", fix=fix)


RULES: list[Rule] = [
    _read("missing_required_file", ERROR, "A file GTFS requires (agency, stops, routes, trips, stop_times) is absent.", "file",
          fix="Add the file to the zip; check its name is lower case and ends in .txt."),
    _read("missing_calendar_and_calendar_date_files", ERROR, "Neither calendar.txt nor calendar_dates.txt exists, so no trip has service days.",
          fix="Add calendar.txt (weekly pattern) or calendar_dates.txt (dates of service)."),
    _read("missing_recommended_file", WARNING, "A file the profile recommends (feed_info.txt; agency_jp.txt for GTFS-JP) is absent.", "file"),
    _read("missing_required_column", ERROR, "A column the file requires is absent from its header.", "file", "field",
          fix="Add the column to the first line of the file, spelled exactly as in the specification."),
    _read("missing_required_field", ERROR, "A required value is empty.", "file", "line", "field",
          fix="Fill in the value on that line."),
    _read("invalid_integer", ERROR, "A value that must be a whole number is not one.", "file", "line", "field", "value"),
    _read("invalid_float", ERROR, "A value that must be a decimal number is not one.", "file", "line", "field", "value"),
    _read("invalid_time", ERROR, "A time is not in H:MM:SS or HH:MM:SS form (times after midnight such as 25:10:00 are allowed).",
          "file", "line", "field", "value", fix="Write the time as HH:MM:SS, e.g. 07:05:00 or 25:10:00."),
    _read("invalid_date", ERROR, "A date is not in YYYYMMDD form.", "file", "line", "field", "value",
          fix="Write the date as YYYYMMDD, e.g. 20260401."),
    _read("duplicate_key", ERROR, "Two rows have the same key (e.g. the same stop_id); the second is quarantined.", "file", "line", "field", "value",
          fix="Give each row its own id, or delete the repeated row."),
    _read("foreign_key_violation", ERROR, "A value refers to a row that does not exist (e.g. a trip's route_id not in routes.txt).",
          "file", "line", "field", "value", fix="Correct the id, or add the missing row to the referenced file."),
    _read("invalid_row_length", ERROR, "A row has more or fewer values than the header; missing values are read as empty, and a row with extra non-empty values is quarantined.", "file", "line",
          fix="Check for a missing or extra comma, or a value with a comma that is not in double quotes."),
    _read("empty_file", ERROR, "A file has no header or no data rows.", "file"),
    _read("empty_row", WARNING, "A row has no values at all.", "file", "line"),
    _read("empty_column_name", ERROR, "A column of the header has no name.", "file", "field"),
    _read("duplicated_column", ERROR, "Two columns of the header have the same name.", "file", "field"),
    _read("unknown_column", INFO, "A column is not part of GTFS or GTFS-JP and close to no field; its values are kept in _extra. "
          "A column close to a field the header lacks is a typo: rule misspelled_column (WARNING) reports it instead.", "file", "field",
          fix="Check the spelling of the column name against the specification."),
    _read("unknown_file", INFO, "A file is not part of GTFS or GTFS-JP; its rows are kept as received.", "file"),
    _read("invalid_input_files_in_subfolder", ERROR, "The feed's files are in a subfolder of the zip instead of at its top level.", "file",
          fix="Zip the files themselves, not the folder that holds them."),
    _read("invalid_character", ERROR, "A file contains bytes that are not text (NUL) or not valid in its declared encoding.", "file", "line"),
    _read("leading_or_trailing_whitespaces", WARNING, "A value starts or ends with spaces, which apps show or compare wrongly.", "file", "line", "field"),
    _read("non_utf8_encoding", WARNING, "A file is not UTF-8 (e.g. Shift_JIS); it was decoded, and exports are UTF-8.", "file",
          fix="Save the file as UTF-8."),
    _read("non_utf8_bytes", WARNING, "A line of a UTF-8 file has bytes that are not UTF-8; they were decoded as Latin-1.", "file", "line"),
    _read("mixed_bom", INFO, "Some files start with a UTF-8 byte order mark and others do not.", "file"),
    _read("unknown_encoding", ERROR, "The encoding named in the feed's spec is not one Python knows.", "file"),
]
