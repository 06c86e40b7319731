"""The ``ondemand:`` section of a spec of kind ``ondemand``: what a leaflet says, checked key by key.

Every mistake is one message naming its key ('ondemand.hours[0].to: ...'); an unknown district
name gets a did-you-mean from the zone layer it is matched against.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path

from transforms.specfile import Date, ListOf, Map, Number, Text, check_shape, is_under, shown

__all__ = ["ONDEMAND_SHAPE", "DAY_SETS", "as_date", "check_ondemand", "minutes"]

#: Which days an `hours:` entry covers; `holidays` are the country's public holidays (package holidays).
DAY_SETS = {
    "weekdays": (1, 1, 1, 1, 1, 0, 0), "weekends": (0, 0, 0, 0, 0, 1, 1), "everyday": (1, 1, 1, 1, 1, 1, 1),
    "monday": (1, 0, 0, 0, 0, 0, 0), "tuesday": (0, 1, 0, 0, 0, 0, 0), "wednesday": (0, 0, 1, 0, 0, 0, 0),
    "thursday": (0, 0, 0, 1, 0, 0, 0), "friday": (0, 0, 0, 0, 1, 0, 0), "saturday": (0, 0, 0, 0, 0, 1, 0),
    "sunday": (0, 0, 0, 0, 0, 0, 1), "holidays": (0, 0, 0, 0, 0, 0, 0),
}
BOOK_BY = ("phone", "app", "web")
_HHMM = Text(expected='a time of day in quotes, such as "08:30"')
_STOP = Map({"id": Text(numbers=True), "name": Text(), "kana": Text(), "lat": Number(lo=-90, hi=90), "lon": Number(lo=-180, hi=180)})
ONDEMAND_SHAPE = Map({
    "agency": Map({"name": Text(), "url": Text(), "phone": Text(), "lang": Text(), "official_name": Text(),
                   "corporate_number": Text(numbers=True)}),
    "route": Map({"id": Text(numbers=True), "short_name": Text(), "long_name": Text(), "type": Number(whole=True),
                  "color": Text(), "text_color": Text()}),
    "area": Map({
        "name": Text(),
        "geojson": Text(expected="the path of a GeoJSON file (Polygon or MultiPolygon, WGS84)"),
        "districts": Map({"layer": Text(), "names": ListOf(Text(numbers=True))}),
        "stops": ListOf(_STOP),
    }),
    "connects_to": ListOf(_STOP),
    "valid": Map({"from": Date(), "to": Date()}),
    "hours": ListOf(Map({"days": Text(), "from": _HHMM, "to": _HHMM})),
    "holidays": Text(),
    "booking": Map({
        "by": ListOf(Text()), "phone": Text(), "url": Text(), "info_url": Text(), "message": Text(),
        "same_day": Map({"minutes_before": Number(whole=True, lo=0, hi=1440), "max_minutes_before": Number(whole=True, lo=1)}),
        "day_before": Map({"until": _HHMM, "days_ahead": Number(whole=True, lo=1, hi=60), "from": _HHMM}),
    }),
    "fare": Map({"price": Number(lo=0), "currency": Text(), "payment": Text()}),
    "office": Map({"id": Text(numbers=True), "name": Text(), "url": Text(), "phone": Text()}),
})


def as_date(v: object) -> date:
    """Return ``v`` as a date (a YAML date or text such as 2026-04-01). If it is neither, raise ValueError."""
    return v if isinstance(v, date) else date.fromisoformat(str(v))


def minutes(hhmm: object) -> int | None:
    """Return the minutes after midnight of "HH:MM" (up to 47:59 for after midnight), or None if it is not such a time."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(hhmm)) if isinstance(hhmm, str) else None
    if not m or int(m.group(2)) > 59 or int(m.group(1)) > 47:
        return None
    return int(m.group(1)) * 60 + int(m.group(2))


def check_ondemand(section: object, *, where: str, root: Path, layer_names=None,
                   japanese: bool = False) -> tuple[dict | None, list[str]]:
    """Return (the section, every problem in it). ``layer_names(layer_id)`` returns a zone layer's {name or id: zone id}.

    If a key is missing or wrong, then its problem names the key and what to write. ``japanese`` (a Japanese town's spec,
    written by its officer from the leaflet): each problem says it in Japanese first, then ' / ' and the English text.
    """
    if not isinstance(section, dict):
        return None, [f"{where}: ondemand: " + ("ありません。オンデマンド交通の spec には `ondemand:`（area、hours、booking）が必要です / "
                                               if japanese else "") +
                      "missing; an on-demand spec needs an `ondemand:` mapping (area, hours, booking)"]
    shape_problems, dropped, section = check_shape(section, ONDEMAND_SHAPE, prefix="ondemand")
    problems = [f"{where}: {f}: {msg}" for f, msg in shape_problems]

    def bad(key: str, msg: str, ja: str) -> None:
        if not is_under(key, dropped):
            problems.append(f"{where}: {key}: {ja} / {msg}" if japanese else f"{where}: {key}: {msg}")

    if not (section.get("agency") or {}).get("name"):
        bad("ondemand.agency.name", "missing; give the operator's name as on the leaflet, e.g. みなと市",
            "ありません。チラシのとおりに運行者の名前を書いてください（例: みなと市）")
    if not (section.get("agency") or {}).get("url"):
        bad("ondemand.agency.url", "missing; give the operator's web page (https://...); GTFS requires one",
            "ありません。運行者のウェブページ（https://...）を書いてください。GTFS では必須です")
    if not (section.get("route") or {}).get("short_name") and not (section.get("route") or {}).get("long_name"):
        bad("ondemand.route", "missing; give the service's name: `route: {short_name: のりあい号}`",
            "ありません。サービスの名前を書いてください: `route: {short_name: のりあい号}`")
    rtype = (section.get("route") or {}).get("type", 3)
    if rtype not in (3, 715):
        bad("ondemand.route.type", f"{shown(rtype)}; use 3 (bus) or 715 (demand and response bus service)",
            f"{shown(rtype)} は使えません。3（バス）か 715（デマンド型バス）にしてください")
    area = section.get("area") or {}
    given = [k for k in ("geojson", "districts", "stops") if area.get(k)]
    if len(given) != 1:
        bad("ondemand.area", "give exactly one of `geojson: PATH`, `districts: {layer: ID, names: [...]}` or `stops: [...]`",
            "`geojson: PATH`、`districts: {layer: ID, names: [...]}`、`stops: [...]` のどれか一つだけを書いてください")
    if area.get("geojson"):
        p = Path(area["geojson"])
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            bad("ondemand.area.geojson", f"{shown(area['geojson'])} is not a file (paths are relative to the project folder)",
                f"{shown(area['geojson'])} というファイルがありません（パスはプロジェクトのフォルダから書きます）")
    if area.get("districts"):
        d = area["districts"]
        if not d.get("layer"):
            bad("ondemand.area.districts.layer", "missing; name a zones spec of specs/trips/, e.g. minato-districts",
                "ありません。specs/trips/ の区域の spec の id を書いてください（例: minato-districts）")
        elif not d.get("names"):
            bad("ondemand.area.districts.names", "missing; list the districts (町丁目) the service covers",
                "ありません。運行する区域（町丁目）を並べて書いてください")
        elif layer_names is not None:
            try:
                known = layer_names(d["layer"])
            except Exception as exc:  # the layer's own spec or file is wrong: say so once
                bad("ondemand.area.districts.layer", f"{shown(d['layer'])}: {exc}", f"{shown(d['layer'])} が読めません（{exc}）")
            else:
                for i, n in enumerate(d["names"] if known is not None else []):  # None: checked when the feed is built
                    if str(n) not in known:
                        near = difflib.get_close_matches(str(n), list(known), n=1, cutoff=0.3)
                        hint = f"did you mean '{near[0]}'?" if near else f"the layer has: {', '.join(sorted(known)[:12])}"
                        hint_ja = f"「{near[0]}」ではありませんか？" if near else f"レイヤーにある名前: {'、'.join(sorted(known)[:12])}"
                        bad(f"ondemand.area.districts.names[{i}]", f"{shown(n)} is not a district of layer {d['layer']}; {hint}",
                            f"「{n}」はレイヤー {d['layer']} の区域にありません。{hint_ja}")
    ids: set[str] = set()
    for key in ("area.stops", "connects_to"):
        items = (area.get("stops") if key == "area.stops" else section.get("connects_to")) or []
        for i, s in enumerate(items):
            for k in ("id", "name", "lat", "lon"):
                if s.get(k) is None:
                    bad(f"ondemand.{key}[{i}].{k}", "missing; each stop needs id, name, lat and lon (WGS84)",
                        "ありません。停留所には id、name、lat、lon（WGS84 の緯度経度）が必要です")
            if s.get("id") is not None and str(s["id"]) in ids:
                bad(f"ondemand.{key}[{i}].id", f"{shown(s['id'])} is given twice; each stop needs its own id",
                    f"{shown(s['id'])} が二度使われています。停留所ごとに別の id にしてください")
            ids.add(str(s.get("id")))
    valid = section.get("valid") or {}
    if not valid.get("from") or not valid.get("to"):
        bad("ondemand.valid", "missing; give the period the leaflet is valid for: `valid: {from: 2026-04-01, to: 2027-03-31}`",
            "ありません。チラシの有効期間を書いてください: `valid: {from: 2026-04-01, to: 2027-03-31}`")
    else:
        got = {}
        for k in ("from", "to"):
            try:
                got[k] = as_date(valid[k])
            except ValueError:
                bad(f"ondemand.valid.{k}", f"{shown(valid[k])} is not a date; write it as 2026-04-01",
                    f"{shown(valid[k])} は日付ではありません。2026-04-01 の形で書いてください")
        if len(got) == 2 and got["to"] < got["from"]:
            bad("ondemand.valid.to", f"{got['to']} is before valid.from {got['from']}",
                f"{got['to']} が valid.from の {got['from']} より前です")
    hours = section.get("hours") or []
    if not hours and "ondemand.hours" not in dropped:
        bad("ondemand.hours", 'missing; list when it runs: `hours: [{days: weekdays, from: "08:00", to: "18:00"}]`',
            '運行時間がありません。`hours: [{days: weekdays, from: "08:00", to: "18:00"}]` のように書いてください')
    for i, h in enumerate(hours):
        if h.get("days") not in DAY_SETS:
            bad(f"ondemand.hours[{i}].days", f"{shown(h.get('days'))}; use one of: {', '.join(DAY_SETS)}",
                f"{shown(h.get('days'))} は使えません。次のどれかにしてください: {'、'.join(DAY_SETS)}")
        a, b = minutes(h.get("from")), minutes(h.get("to"))
        for k, v in (("from", a), ("to", b)):
            if v is None:
                bad(f"ondemand.hours[{i}].{k}", f"{shown(h.get(k))} is not a time; write it in quotes as \"HH:MM\"",
                    f"{shown(h.get(k))} は時刻ではありません。引用符で囲んで \"HH:MM\" の形で書いてください")
        if a is not None and b is not None and b <= a:
            bad(f"ondemand.hours[{i}].to", f"{h['to']} ends before it starts ({h['from']}); a window past midnight is written "
                                          "with hours past 24, e.g. \"25:00\"",
                f"{h['to']} が始まり（{h['from']}）より前です。深夜0時をまたぐ時間は 24 時より後の形（例: \"25:00\"）で書いてください")
    if section.get("holidays", "closed") not in ("closed", "usual"):
        bad("ondemand.holidays", f"{shown(section.get('holidays'))}; use closed (no service on public holidays unless an "
                                 "`hours` entry says `days: holidays`) or usual (run as on any other day)",
            f"{shown(section.get('holidays'))} は使えません。closed（祝日は運休。`hours` に `days: holidays` があればその時間だけ運行）"
            "か usual（祝日もふだんどおり運行）にしてください")
    booking = section.get("booking") or {}
    by = booking.get("by") or []
    if not by and "ondemand.booking" not in dropped:
        bad("ondemand.booking.by", "missing; say how to book: [phone], [app] or [web] (several may be given)",
            "予約の方法がありません。[phone]（電話）、[app]（アプリ）、[web]（ウェブ）で書いてください（複数可）")
    for i, b in enumerate(by):
        if b not in BOOK_BY:
            bad(f"ondemand.booking.by[{i}]", f"{shown(b)}; use some of: {', '.join(BOOK_BY)}",
                f"{shown(b)} は使えません。次から選んでください: {'、'.join(BOOK_BY)}")
    if "phone" in by and not booking.get("phone"):
        bad("ondemand.booking.phone", "missing; booking by phone needs the number to call, e.g. \"0123-00-0000\"",
            "電話番号がありません。電話で予約するなら予約先の番号を書いてください（例: \"0123-00-0000\"）")
    if ("app" in by or "web" in by) and not booking.get("url"):
        bad("ondemand.booking.url", "missing; booking by app or web needs the address to book at (https://...)",
            "予約先のアドレスがありません。アプリやウェブで予約するなら、そのアドレス（https://...）を書いてください")
    for k in ("url", "info_url"):
        if booking.get(k) and not re.match(r"https?://", booking[k]):
            bad(f"ondemand.booking.{k}", f"{shown(booking[k])} must start with http:// or https://",
                f"{shown(booking[k])} は http:// か https:// で始めてください")
    when = [k for k in ("same_day", "day_before") if booking.get(k)]
    if len(when) != 1 and "ondemand.booking" not in dropped:
        bad("ondemand.booking", "give exactly one of `same_day: {minutes_before: 30}` or `day_before: {until: \"17:00\"}`",
            "予約の締め切りを `same_day: {minutes_before: 30}`（当日、乗る30分前まで）か `day_before: {until: \"17:00\"}`"
            "（前日17時まで）のどちらか一つで書いてください")
    sd = booking.get("same_day") or {}
    if sd and sd.get("minutes_before") is None:
        bad("ondemand.booking.same_day.minutes_before", "missing; how many minutes before the ride the booking must be made",
            "ありません。乗る何分前までに予約が必要かを書いてください")
    if sd.get("max_minutes_before") is not None and sd.get("minutes_before") is not None and sd["max_minutes_before"] < sd["minutes_before"]:
        bad("ondemand.booking.same_day.max_minutes_before", "must be at least minutes_before",
            "minutes_before 以上にしてください")
    db = booking.get("day_before") or {}
    if db:
        if minutes(db.get("until")) is None:
            bad("ondemand.booking.day_before.until", f"{shown(db.get('until'))}; write the last time to book the day before in quotes, e.g. \"17:00\"",
                f"{shown(db.get('until'))} は使えません。前日の予約締め切り時刻を引用符で囲んで書いてください（例: \"17:00\"）")
        if db.get("from") is not None and minutes(db["from"]) is None:
            bad("ondemand.booking.day_before.from", f"{shown(db['from'])} is not a time; write it as \"HH:MM\"",
                f"{shown(db['from'])} は時刻ではありません。\"HH:MM\" の形で書いてください")
    fare = section.get("fare") or {}
    if fare:
        if fare.get("price") is None:
            bad("ondemand.fare.price", "missing; the fare of one ride (e.g. 300)", "ありません。1回の運賃を書いてください（例: 300）")
        if not re.fullmatch(r"[A-Z]{3}", str(fare.get("currency", ""))):
            bad("ondemand.fare.currency", f"{shown(fare.get('currency'))}; give an ISO 4217 code such as JPY",
                f"{shown(fare.get('currency'))} は使えません。JPY のような ISO 4217 の通貨コードにしてください")
        if fare.get("payment", "onboard") not in ("onboard", "before"):
            bad("ondemand.fare.payment", f"{shown(fare.get('payment'))}; use onboard or before (paid before boarding)",
                f"{shown(fare.get('payment'))} は使えません。onboard（車内で支払い）か before（乗る前に支払い）にしてください")
    return section, problems
