"""Rules raised while a timetable spreadsheet is read (transforms.timetable.adapter).

Listed here so every code has one entry with its severity, explanation and fix. Locations are
given in Excel notation (file, sheet!cell) in each notice's message.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Rule
from transforms.rules.read import read_rule


RULES: list[Rule] = [
    read_rule("timetable_invalid_time", ERROR, "A timetable cell is neither a time nor a known marker; that stop time is quarantined.",
          "file", "value", fix="Write the time as 5:30, 05:30 or 530, or use a marker declared in markers (レ, =).",
          why_ja="時刻表のセルが時刻でも、定義された記号でもありません。その停留所の時刻は隔離されます。",
          fix_ja="時刻を 5:30、05:30、530 のように書くか、spec の markers に定義した記号（レ、= など）を使ってください。"),
    read_rule("timetable_backwards_trip", ERROR, "A trip's times go backwards; the whole trip is quarantined, never reordered.",
          "file", fix="Correct the time at the cell named; a trip past midnight is written 24:10 or later.",
          why_ja="便の時刻が途中で戻っています。並べ替えはせず、その便全体を隔離します。",
          fix_ja="示したセルの時刻を直してください。深夜 0 時を過ぎる便は 24:10 のように 24 時以降で書きます。"),
    read_rule("timetable_stop_not_matched", ERROR, "A stop name in the timetable matches no stop (or several) in the stop list; "
          "its times are quarantined.", "file", "value",
          fix="Correct the name, add the stop to the stop list, or declare it in stops.overrides.",
          why_ja="時刻表の停留所名が停留所一覧のどの停留所とも（または複数の停留所と）一致しません。その時刻は隔離されます。",
          fix_ja="停留所名を直すか、停留所一覧に追加するか、spec の stops.overrides で対応を指定してください。"),
    read_rule("timetable_stop_not_in_stop_list", ERROR, "A stop id from the pattern/fare table or an override is not in the stop list.",
          "file", "value", fix="Add the stop to the stop list or correct the id.",
          why_ja="系統・運賃表や overrides にある停留所 ID が停留所一覧にありません。",
          fix_ja="停留所一覧にその停留所を追加するか、ID を直してください。"),
    read_rule("timetable_stop_without_coordinates", ERROR, "A stop used by trips has no coordinates in the stop list.", "file", "value",
          fix="Add latitude and longitude (or plane rectangular x/y with stops.crs).",
          why_ja="便が使う停留所に、停留所一覧で座標がありません。",
          fix_ja="緯度・経度（または平面直角座標の x・y と spec の stops.crs）を停留所一覧に入力してください。"),
    read_rule("timetable_trip_too_short", WARNING, "A trip has only one readable stop time; it is quarantined.", "file",
          fix="Check the trip's column or row: it needs at least two times.",
          why_ja="読み取れた時刻が一つしかない便です。この便は隔離されます。",
          fix_ja="その便の列（行）を確認してください。便には二つ以上の時刻が必要です。"),
    read_rule("timetable_no_sheet_selected", ERROR, "No sheet of a workbook matches sheets.include/exclude.", "file",
          fix="Check the sheet name patterns in the spec.",
          why_ja="ブックのどのシートも spec の sheets.include / exclude に当てはまりません。",
          fix_ja="spec のシート名の指定を、実際のシート名と見比べて直してください。"),
    read_rule("timetable_no_service", ERROR, "A sheet has no service (workbooks[].service or sheets.rules).", "file",
          fix="Give the sheet a service in the spec (workbooks[].service or a sheets.rules entry).",
          why_ja="シートに運行日 (service) が指定されていません。",
          fix_ja="spec の workbooks[].service か sheets.rules で、そのシートの運行日を指定してください。"),
    read_rule("formula_without_value", WARNING, "A cell holds a formula but no saved value (the workbook was written by a "
              "program that does not calculate), so it was read as empty.", "file", "value",
          fix="Open the workbook in Excel or LibreOffice and save it, so the values are stored; or type the value in the cell.",
          why_ja="セルに数式がありますが、計算結果が保存されていないため空のセルとして読みました。",
          fix_ja="Excel か LibreOffice でブックを開いて保存し、計算結果を保存してください。またはセルに値を直接入力してください。"),
    read_rule("timetable_sheet_without_trips", INFO, "A selected sheet holds no trip times; it is skipped.", "file",
          fix="Nothing to do if the sheet holds no timetable; otherwise check layout in the spec.",
          why_ja="選ばれたシートに便の時刻がないため、読み飛ばしました。",
          fix_ja="時刻表でないシートならそのままで構いません。時刻表なら spec の layout を確認してください。"),
    read_rule("timetable_sheet_without_stops", ERROR, "A sheet has times but no stop names where the layout says.", "file",
          fix="Check layout.stop_column and layout.first_stop_row.",
          why_ja="シートに時刻はありますが、layout で指定した位置に停留所名がありません。",
          fix_ja="spec の layout.stop_column と layout.first_stop_row を確認してください。"),
    read_rule("timetable_no_trips", ERROR, "No trip was read from any timetable.", "file", fix="Check sheets and layout in the spec.",
          why_ja="どの時刻表からも便を読み取れませんでした。", fix_ja="spec の sheets と layout を確認してください。"),
    read_rule("timetable_invalid_fare", ERROR, "A fare table cell is not a number of yen.", "file",
          fix="Write the fare as a whole number of yen, e.g. 210.",
          why_ja="運賃表のセルが円の金額（数値）になっていません。", fix_ja="運賃を円単位の整数（例: 210）で入力してください。"),
    read_rule("timetable_fare_stop_unknown", WARNING, "A fare names a stop that is not in the stop list; the fare is skipped.", "file",
          fix="Correct the stop name in the fare table, or add the stop to the stop list.",
          why_ja="運賃表に停留所一覧にない停留所名があり、その運賃は使われません。",
          fix_ja="運賃表の停留所名を直すか、停留所一覧に追加してください。"),
    read_rule("timetable_fare_conflict", WARNING, "A route's fare table gives two fares between the same two zones (a loop passes a "
          "stop twice); GTFS fare_rules can hold one, the first is kept.", "file",
          fix="Check which fare is right; if both are, split the route so each has one fare per pair of stops.",
          why_ja="同じ二つの停留所（ゾーン）間に運賃が二つあります（循環で同じ停留所を二度通るなど）。GTFS には一つしか書けないため、最初の運賃を使います。",
          fix_ja="正しい運賃を確認してください。両方正しい場合は路線を分けてください。"),
    read_rule("timetable_read_summary", INFO, "How many time cells were read, and how many became stop times, were merged "
          "(a stop on two rows) or were quarantined.", "file",
          fix="Nothing to do; compare the figures with the timetable.",
          why_ja="読み取った時刻セルの数と、そのうち停留所時刻になった数・統合した数（2 行に分かれた停留所）・隔離した数です。",
          fix_ja="対応は不要です。時刻表の件数と見比べてください。"),
    read_rule("timetable_unused_service", INFO, "A service declared in calendar.services has no trips.", "file",
          fix="Remove the service from the spec, or give it its sheets.",
          why_ja="spec の calendar.services に定義した運行日を使う便がありません。",
          fix_ja="spec からその運行日を削除するか、対応するシートを割り当ててください。"),
    read_rule("timetable_layout_does_not_fit", ERROR, "The spec's layout cannot be laid on a sheet (a block without its stop "
          "column, a marker that is not there); the sheet is skipped, the others are read.", "file", "value",
          fix="Change the layout key named in the message, or add a layouts entry (workbook/sheet pattern) for this sheet.",
          why_ja="spec の layout がシートに合いません（停留所の列がない、目印が見つからないなど）。そのシートは読まず、他のシートは読みます。",
          fix_ja="メッセージに示した layout の項目を直すか、このブック・シート用に layouts の指定を追加してください。"),
    read_rule("timetable_cells_outside_layout", WARNING, "A sheet holds time-like cells outside every block of the layout, so "
          "part of the timetable may not have been read.", "file", "value",
          fix="Add a block for the range named (layout.blocks, or layout.repeat with a marker); `noriba spec suggest` shows the blocks.",
          why_ja="レイアウトのどのブロックにも入らない位置に時刻らしいセルがあります。時刻表の一部を読んでいない可能性があります。",
          fix_ja="示した範囲のブロックを layout.blocks か layout.repeat（目印）で追加してください。`noriba spec suggest` で見つかったブロックを確認できます。"),
    read_rule("timetable_trip_without_route", WARNING, "The layout takes each trip's route from a header row (系統/路線) but this "
          "trip's header cell is empty; it goes to the spec's route.id.", "file", "value",
          fix="Write the trip's route in the header cell named.",
          why_ja="layout で便ごとの系統を見出し行から読む指定ですが、この便の見出しセルが空です。spec の route.id の路線にしました。",
          fix_ja="示した見出しセルにその便の系統（路線）を書いてください。"),
]
