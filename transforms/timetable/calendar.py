"""Services and their dates: weekday patterns, Japanese national holidays, declared exceptions.

Holidays come from the ``holidays`` library's Japan calendar (振替休日 and 国民の休日 included),
never from a hand-typed list. A service says what happens on a holiday: ``skip`` (does not
run: a removed date when the weekday pattern would run it), ``run`` (runs: an added date
when the pattern would not), or ``as_day`` (nothing special).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_RULES = ("skip", "run", "as_day")


@dataclass
class Service:
    service_id: str
    days: tuple[str, ...]
    holidays: str = "as_day"  # skip | run | as_day


@dataclass
class Exception_:
    service_id: str
    date: dt.date
    added: bool  # True: runs on that date (exception_type 1); False: does not (2)
    why: str = ""


@dataclass
class CalendarPlan:
    start: dt.date
    end: dt.date
    services: list[Service]
    exceptions: list[Exception_] = field(default_factory=list)


def japanese_holidays(start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Return {date: holiday name} of Japan's national holidays between start and end, inclusive."""
    import holidays

    jp = holidays.country_holidays("JP", years=range(start.year, end.year + 1), language="ja")
    return {d: str(n) for d, n in sorted(jp.items()) if start <= d <= end}


def calendar_rows(plan: CalendarPlan) -> tuple[list[list[str]], list[list[str]]]:
    """Return (calendar.txt rows, calendar_dates.txt rows) for the plan.

    Declared exceptions win over holiday rules for the same service and date; an exception
    that calendar.txt already expresses (removing a day the service does not run) makes no row.
    """
    cal = []
    for s in plan.services:
        cal.append([s.service_id, *("1" if d in s.days else "0" for d in DAYS),
                    plan.start.strftime("%Y%m%d"), plan.end.strftime("%Y%m%d")])
    dates: dict[tuple[str, dt.date], int] = {}
    for day in japanese_holidays(plan.start, plan.end):
        weekday = DAYS[day.weekday()]
        for s in plan.services:
            if s.holidays == "skip" and weekday in s.days:
                dates[(s.service_id, day)] = 2
            elif s.holidays == "run" and weekday not in s.days:
                dates[(s.service_id, day)] = 1
    by_id = {s.service_id: s for s in plan.services}
    for e in plan.exceptions:
        if not plan.start <= e.date <= plan.end or e.service_id not in by_id:
            continue
        # a row only where calendar.txt says otherwise: removing a day the service never runs is noise
        if (DAYS[e.date.weekday()] in by_id[e.service_id].days) == e.added:
            dates.pop((e.service_id, e.date), None)
        else:
            dates[(e.service_id, e.date)] = 1 if e.added else 2
    rows = [[sid, d.strftime("%Y%m%d"), str(t)] for (sid, d), t in sorted(dates.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    return cal, rows
