"""Validation reports of one feed version: ``report.json`` (for machines) and ``report.html`` (for people).

Both live under ``$NORIBA_HOME/reports/<feed_id>/<feed_version>/``. They are built from what the
parse/validate step staged (or, for an older version, from its lake partitions): the version's
metadata row, its notices (up to :data:`SAMPLE_LIMIT` examples per code) and its tables' languages.
The HTML is self-contained (inline CSS, no script, no network), every value is escaped, and its
labels are Japanese when the feed is (profile gtfs-jp, or agency_lang / feed_lang ``ja``).
"""

from __future__ import annotations

import html
import json
import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path, PurePath

import duckdb

from warehouse.policy import BLOCKED, POLICY_DOC, blocking_reason, pass_label
from transforms.notices import SEVERITIES

SAMPLE_LIMIT = 1000
REPORT_FORMAT = 1
_SEV_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def staged_sources(staging_dir: Path) -> dict[str, Path]:
    """Return the files a report is built from, in a staging folder of parse_validate."""
    s = Path(staging_dir)
    return {"meta": s / "meta_feed_versions.parquet", "notices": s / "quality_notices.parquet",
            "agency": s / "gtfs" / "agency.parquet", "feed_info": s / "gtfs" / "feed_info.parquet"}


def lake_sources(ws, feed_id: str, feed_version: str) -> dict[str, Path]:
    """Return the files a report is built from, in the lake partitions of one version."""
    def part(table: str) -> Path:
        return ws.lake_partition(table, feed_id, feed_version) / "part-0.parquet"

    return {"meta": part("meta_feed_versions"), "notices": part("quality_notices"),
            "agency": part("gtfs_agency"), "feed_info": part("gtfs_feed_info")}


def _languages(con, sources: dict[str, Path]) -> list[str]:
    langs: list[str] = []
    for key, col in (("agency", "agency_lang"), ("feed_info", "feed_lang")):
        p = sources.get(key)
        if not p or not p.exists():
            continue
        src = f"read_parquet({_lit(str(p))}, hive_partitioning=false)"
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        if col in names:
            langs += [r[0] for r in con.execute(f"SELECT DISTINCT lower(trim({col})) FROM {src} WHERE {col} IS NOT NULL").fetchall()]
    return sorted(set(langs))


def is_japanese(profile: str | None, languages: list[str]) -> bool:
    """Return whether a feed's report should speak Japanese: GTFS-JP, or a language tag 'ja…'."""
    return profile == "gtfs-jp" or any(lang.startswith("ja") for lang in languages)


def build_report(feed_id: str, feed_version: str, sources: dict[str, Path], *, sample_limit: int = SAMPLE_LIMIT) -> dict:
    """Return the report of one feed version as a JSON-able dict, from its staged or lake files."""
    from transforms.rules.registry import rule_codes
    from warehouse import scratch

    con = scratch.cursor()  # read-only queries: the process's scratch database, not a new one per feed
    try:
        meta_rows = con.sql(f"SELECT * FROM read_parquet({_lit(str(sources['meta']))}, hive_partitioning=false)").to_arrow_table().to_pylist()
        meta = meta_rows[0]
        samples: dict[tuple[str, str], list[dict]] = {}
        seen_sev: dict[str, str] = {}
        if sources["notices"].exists():
            rows = con.sql(
                f"SELECT code, severity, file, line, field, value, message FROM ("
                f" SELECT *, row_number() OVER (PARTITION BY code, severity ORDER BY file NULLS FIRST, line NULLS FIRST, field) AS n"
                f" FROM read_parquet({_lit(str(sources['notices']))}, hive_partitioning=false))"
                f" WHERE n <= {int(sample_limit)} ORDER BY code, severity, n").fetchall()
            for code, sev, file, line, fld, value, message in rows:
                seen_sev.setdefault(code, sev)
                samples.setdefault((code, sev), []).append(
                    {"file": file, "line": line, "field": fld, "value": value, "message": message})
        languages = _languages(con, sources)
    finally:
        con.close()
    counts = _counts(meta, seen_sev)
    blocked_by = json.loads(meta.get("blocked_by") or "{}")
    rules = rule_codes()
    notices = []
    for (code, sev), n in counts.items():
        rule = rules.get(code)
        ex = samples.get((code, sev), [])
        notices.append({
            "code": code, "severity": sev, "count": n, "blocks": code in blocked_by,
            "why": (rule.why if rule else (ex[0]["message"] if ex else "")) or "",
            "fix": (rule.fix if rule else "") or "",
            "why_ja": (rule.why_ja if rule else "") or "", "fix_ja": (rule.fix_ja if rule else "") or "",
            "samples_total": len(ex), "samples": ex,
        })
    notices.sort(key=lambda d: (_SEV_ORDER.get(d["severity"], 9), not d["blocks"], -d["count"], d["code"]))
    totals = {s: sum(d["count"] for d in notices if d["severity"] == s) for s in SEVERITIES}
    files = {name: {k: v for k, v in info.items() if k != "header"} for name, info in json.loads(meta.get("files") or "{}").items()}
    spec = json.loads(meta.get("spec") or "{}")
    status = meta.get("policy_status") or "pass"
    return {
        "report_format": REPORT_FORMAT,
        "feed_id": feed_id,
        "feed_version": feed_version,
        "feed_name": spec.get("name") or feed_id,
        "operator": spec.get("operator"),
        "validation_date": meta.get("validation_date"),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": meta.get("profile"),
        "languages": languages,
        "language": "ja" if is_japanese(meta.get("profile"), languages) else "en",
        "source": meta.get("source"),
        "content_sha256": meta.get("content_sha256"),
        "service_start": meta.get("service_start"),
        "service_end": meta.get("service_end"),
        "rows": {"in": meta.get("rows_in"), "accepted": meta.get("rows_accepted"), "quarantined": meta.get("rows_quarantined")},
        "files": files,
        "totals": totals,
        "counts": {s: {d["code"]: d["count"] for d in notices if d["severity"] == s} for s in SEVERITIES},
        "policy": {"status": status, "blocked_by": blocked_by, "reason": blocking_reason(blocked_by),
                   "rules": json.loads(meta.get("policy") or "null")},
        "notices": notices,
    }


def _counts(meta: dict, seen_sev: dict[str, str]) -> dict[tuple[str, str], int]:
    """Return {(code, severity): total} from the metadata row (older rows lack notice_counts: use the samples' severity)."""
    if meta.get("notice_counts"):
        return {(code, sev): n for sev, by_code in json.loads(meta["notice_counts"]).items() for code, n in by_code.items()}
    from transforms.rules.registry import rule_codes

    rules = rule_codes()
    out = {}
    for code, n in json.loads(meta.get("notice_codes") or "{}").items():
        sev = seen_sev.get(code) or (rules[code].severity if code in rules else "INFO")
        out[(code, sev)] = n
    return out


def report_dir(ws, feed_id: str, feed_version: str) -> Path:
    return ws.reports / feed_id / feed_version


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(ws, report: dict) -> dict:
    """Return the paths of report.json and report.html written for ``report`` (each replaced whole)."""
    out = report_dir(ws, report["feed_id"], report["feed_version"])
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
    _write_atomic(out / "report.html", render_html(report))
    return {"json": str(out / "report.json"), "html": str(out / "report.html")}


# ---------------------------------------------------------------- text

LABELS = {
    "en": {
        "title": "Validation report", "feed": "Feed", "version": "Version", "date": "Validation date", "profile": "Profile",
        "operator": "Operator", "source": "Source", "service": "Service period", "generated": "Generated",
        "verdict": "Publishing verdict", "pass": "PASS: this version can be served as the latest and exported.",
        "blocked": "BLOCKED: this version is kept for inspection, but it is not served as the latest and no export is built from it.",
        "blocked_by": "Blocked by", "summary": "Rows per file", "file": "File", "rows_in": "Rows read", "accepted": "Accepted",
        "quarantined": "Quarantined", "encoding": "Encoding", "total": "Total", "problems": "Problems, most serious first",
        "none": "No problems found.", "what": "What is wrong", "where": "Where", "fix": "How to fix", "examples": "Examples",
        "show": "Examples ({n})", "not_listed": "{n} more findings are not listed here (see quality.notices for the samples kept).",
        "line": "Line", "field": "Field", "value": "Value", "message": "Message", "findings": "findings",
        "blocks": "blocks publishing", "ERROR": "Error", "WARNING": "Warning", "INFO": "Info",
        "top": "Top problems", "report": "Report", "rows": "rows", "read": "read",
        "pass_short": "PASS", "blocked_short": "BLOCKED by policy", "policy": "Policy",
        "pass_with_errors": ": this version is served as the latest and exported; the errors are listed below.",
        "policy_doc": "What blocks publishing (severity policy)",
        "fix_generic": "Correct the file at the lines listed (see the examples), then send the feed again.",
        "against": "Checked against",
    },
    "ja": {
        "title": "検証レポート", "feed": "フィード", "version": "バージョン", "date": "検証日", "profile": "プロファイル",
        "operator": "事業者", "source": "入力", "service": "運行期間", "generated": "作成日時",
        "verdict": "公開判定", "pass": "合格：このバージョンを最新版として提供し、エクスポートできます。",
        "blocked": "公開停止：このバージョンは確認用に保存されますが、最新版として提供されず、エクスポートも作成されません。",
        "blocked_by": "停止の原因", "summary": "ファイルごとの行数", "file": "ファイル", "rows_in": "読込行数", "accepted": "採用",
        "quarantined": "隔離", "encoding": "文字コード", "total": "合計", "problems": "問題点（重大なものから）",
        "none": "問題は見つかりませんでした。", "what": "問題の内容", "where": "場所", "fix": "直し方", "examples": "例",
        "show": "例（{n}件）", "not_listed": "ほか{n}件はここに載せていません。",
        "line": "行", "field": "項目", "value": "値", "message": "メッセージ", "findings": "件",
        "blocks": "公開を止めています", "ERROR": "エラー", "WARNING": "警告", "INFO": "情報",
        "top": "主な問題", "report": "レポート", "rows": "行", "read": "読込",
        "pass_short": "合格", "blocked_short": "公開停止（ポリシー）", "policy": "判定ルール",
        "pass_with_errors": "：このバージョンは最新版として提供され、エクスポートも作成されます。エラーの内容は下の一覧を確認してください。",
        "policy_doc": "公開を止める条件（判定ルールの説明）",
        "fix_generic": "例に示した行のデータを修正し、フィードを再提出してください。",
        "against": "照合した静的 GTFS",
    },
}


def _text(d: dict, key: str, lang: str) -> str:
    """Return the rule text in the report's language, falling back to English (and for a fix, to a general one)."""
    text = (d.get(f"{key}_ja") if lang == "ja" else None) or d.get(key) or ""
    return text or (LABELS[lang]["fix_generic"] if key == "fix" else "")


def where(sample: dict) -> str:
    """Return 'file:line [field] = value' for one sample (parts that are missing are left out)."""
    s = sample.get("file") or ""
    if sample.get("line") is not None:
        s += f":{sample['line']}"
    if sample.get("field"):
        s += f" [{sample['field']}]"
    if sample.get("value") not in (None, ""):
        v = str(sample["value"])
        s += f" = {(v[:60] + '…') if len(v) > 60 else v!r}"
    return s.strip()


def summary_lines(report: dict, *, limit: int = 5, examples: int = 2) -> list[str]:
    """Return a short summary a person can act on: verdict, rows, the top problems with examples and fixes."""
    lang = report["language"]
    L = LABELS[lang]
    rows = report["rows"]
    def low(key: str) -> str:
        return L[key].lower()

    name = report["feed_id"] if report["feed_name"] == report["feed_id"] else f"{report['feed_name']} ({report['feed_id']})"
    lines = [f"{name}: {low('version')} {report['feed_version']}, {low('date')} {report['validation_date']}, {report['profile']}",
             f"  {L['rows']}: {rows['in'] or 0:,} {L['read']}, {rows['accepted'] or 0:,} {low('accepted')}, "
             f"{rows['quarantined'] or 0:,} {low('quarantined')}"]
    pol = report["policy"]
    if pol["status"] == BLOCKED:
        lines.append(f"  {L['blocked_short']}: {pol['reason']}")
    else:
        errors = report["totals"].get("ERROR", 0)
        lines.append(f"  {pass_label(errors, lang=lang)}" + (f" — {L['policy_doc']}: {POLICY_DOC}" if errors else ""))
    totals = report["totals"]
    lines.append("  " + ", ".join(f"{L[s]} {totals[s]:,}" for s in SEVERITIES))
    if report["notices"]:
        lines.append(f"{L['top']}:")
    for d in report["notices"][:limit]:
        mark = f" ({L['blocks']})" if d["blocks"] else ""
        sev = f"{d['severity']:<7}" if lang == "en" else L.get(d["severity"], d["severity"])
        lines.append(f"  {sev} {d['code']} ×{d['count']:,}{mark}: {_text(d, 'why', lang)}")
        for s in d["samples"][:examples]:
            lines.append(f"      {where(s)}" + (f"  {s['message']}" if s.get("message") else ""))
        fix = _text(d, "fix", lang)
        if fix:
            lines.append(f"      {L['fix']}: {fix}")
    if len(report["notices"]) > limit:
        more = len(report["notices"]) - limit
        lines.append(f"  … {more} more codes in the report" if lang == "en" else f"  …ほか{more}種類はレポートを参照")
    return lines


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans JP","Yu Gothic",sans-serif;margin:0;color:#1d2125;background:#f6f7f9;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d4d9;padding-bottom:.3rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:1rem 0}dl.meta dt{font-weight:600;color:#4a525a}dl.meta dd{margin:0;overflow-wrap:anywhere}
.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}.verdict.pass{background:#e3f4e8;border:1px solid #5aa86f}.verdict.blocked{background:#fde7e7;border:1px solid #c94b4b}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}th,td{border:1px solid #d9dde2;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#eef0f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.notice{background:#fff;border:1px solid #d9dde2;border-left:6px solid #999;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.notice.ERROR{border-left-color:#c94b4b}.notice.WARNING{border-left-color:#d9a400}.notice.INFO{border-left-color:#4a7fc1}
.notice h3{margin:.2rem 0;font-size:1.05rem}.sev{display:inline-block;padding:0 .4rem;border-radius:4px;color:#fff;font-size:.8rem;margin-right:.4rem}
.sev.ERROR{background:#b23b3b}.sev.WARNING{background:#9a7400}.sev.INFO{background:#3d6ca8}.blocks{color:#b23b3b;font-weight:600;margin-left:.5rem}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}.where{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
ul.first{margin:-.6rem 0 .6rem;padding-left:1.4rem}ul.first li{margin:.15rem 0;overflow-wrap:anywhere}.msg{color:#4a525a;font-size:.9rem;margin-left:.5rem}
details{margin:.5rem 0}summary{cursor:pointer;color:#2c5d9a}.totals span{margin-right:1.2rem}
@media print{details{display:block}body{background:#fff}}
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def source_name(source: str | None) -> str | None:
    """Return what the page shows of an input: a file's own name (no folder of the server), or a URL without
    credentials, query or fragment. Several files (``a, b``) give their names."""
    if not source:
        return source
    from urllib.parse import urlsplit, urlunsplit

    if re.match(r"^https?://", source):
        u = urlsplit(source)
        host = u.hostname or ""
        return urlunsplit((u.scheme, host + (f":{u.port}" if u.port else ""), u.path, "", ""))
    return ", ".join(PurePath(p.strip()).name for p in source.split(", "))


def render_html(report: dict) -> str:
    """Return the report as one self-contained HTML page; every value from the feed is escaped."""
    lang = report["language"]
    L = LABELS[lang]
    pol = report["policy"]
    out: list[str] = []
    w = out.append
    w(f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
      f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
      f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">\n'
      f'<title>{_e(L["title"])}: {_e(report["feed_name"])} {_e(report["feed_version"])}</title>\n'
      f'<style>{_CSS}</style>\n</head>\n<body>\n<main>\n')
    w(f'<p>{_e(L["title"])}</p>\n<h1>{_e(report["feed_name"])}</h1>\n<dl class="meta">\n')
    service = (f"{report.get('service_start') or '?'} – {report.get('service_end') or '?'}"
               if report.get("service_start") or report.get("service_end") or report.get("kind") != "gtfs-rt" else None)
    for key, val in (("feed", report["feed_id"]), ("operator", report.get("operator")), ("version", report["feed_version"]),
                     ("date", report["validation_date"]), ("profile", report["profile"]), ("service", service),
                     ("source", source_name(report.get("source"))), ("against", report.get("static_feed")),
                     ("generated", report["generated_at"])):
        if val:
            w(f"<dt>{_e(L[key])}</dt><dd>{_e(val)}</dd>\n")
    w("</dl>\n")
    status = "blocked" if pol["status"] == BLOCKED else "pass"
    errors = report["totals"].get("ERROR", 0)
    text = L[status] if status == "blocked" or not errors else f'{pass_label(errors, lang=lang)}{L["pass_with_errors"]}'
    w(f'<h2>{_e(L["verdict"])}</h2>\n<div class="verdict {status}" id="verdict">{_e(text)}')
    if status == "blocked":
        w(f'<br>{_e(L["blocked_by"])}: <code>{_e(pol["reason"])}</code>')
    w("</div>\n")
    rules = pol.get("rules") or {}
    if rules:
        parts = [f"block: {', '.join(rules.get('block') or []) or '-'}"]
        parts += [f"{k}: {', '.join(rules[k])}" for k in ("block_codes", "allow") if rules.get(k)]
        w(f'<p>{_e(L["policy"])}: <code>{_e("; ".join(parts))}</code></p>\n')
    w(f'<p>{_e(L["policy_doc"])}: <code>{_e(POLICY_DOC)}</code></p>\n')
    w('<p class="totals">' + "".join(f'<span><span class="sev {s}">{_e(L[s])}</span>{report["totals"][s]:,} {_e(L["findings"])}</span>'
                                     for s in SEVERITIES) + "</p>\n")
    w(f'<h2>{_e(L["summary"])}</h2>\n<table>\n<tr><th>{_e(L["file"])}</th><th>{_e(L["rows_in"])}</th><th>{_e(L["accepted"])}</th>'
      f'<th>{_e(L["quarantined"])}</th><th>{_e(L["encoding"])}</th></tr>\n')
    for name, f in sorted(report["files"].items()):
        n_in, n_ok, n_q = (f.get(k) or 0 for k in ("rows_in", "accepted", "quarantined"))
        w(f'<tr><td>{_e(name)}</td><td class="n">{n_in:,}</td><td class="n">{n_ok:,}</td>'
          f'<td class="n">{n_q:,}</td><td>{_e(f.get("encoding"))}</td></tr>\n')
    r = report["rows"]
    w(f'<tr><th>{_e(L["total"])}</th><th class="n">{(r["in"] or 0):,}</th><th class="n">{(r["accepted"] or 0):,}</th>'
      f'<th class="n">{(r["quarantined"] or 0):,}</th><th></th></tr>\n</table>\n')
    w(f'<h2>{_e(L["problems"])}</h2>\n')
    if not report["notices"]:
        w(f'<p>{_e(L["none"])}</p>\n')
    for d in report["notices"]:
        sev = d["severity"] if d["severity"] in SEVERITIES else "INFO"
        w(f'<section class="notice {sev}" id="{_e(d["code"])}">\n<h3><span class="sev {sev}">{_e(L.get(sev, sev))}</span>'
          f'<code>{_e(d["code"])}</code> ×{d["count"]:,}')
        if d["blocks"]:
            w(f'<span class="blocks">{_e(L["blocks"])}</span>')
        w("</h3>\n")
        why, fix = _text(d, "why", lang), _text(d, "fix", lang)
        w(f'<p><strong>{_e(L["what"])}:</strong> {_e(why)}</p>\n')
        if d["samples"]:  # the first places, each with its own message (which names the ids and values involved)
            w(f'<p><strong>{_e(L["where"])}:</strong></p>\n<ul class="first">\n')
            for s in d["samples"][:3]:
                msg = f' <span class="msg">{_e(s["message"])}</span>' if s.get("message") else ""
                w(f'<li><span class="where">{_e(where(s))}</span>{msg}</li>\n')
            w("</ul>\n")
        if fix:
            w(f'<p><strong>{_e(L["fix"])}:</strong> {_e(fix)}</p>\n')
        if d["samples"]:
            shown = f"{len(d['samples']):,}"
            w(f'<details><summary>{_e(L["show"].format(n=shown))}</summary>\n<table>\n'
              f'<tr><th>{_e(L["file"])}</th><th>{_e(L["line"])}</th><th>{_e(L["field"])}</th><th>{_e(L["value"])}</th>'
              f'<th>{_e(L["message"])}</th></tr>\n')
            for s in d["samples"]:
                w(f'<tr><td>{_e(s["file"])}</td><td class="n">{_e(s["line"])}</td><td>{_e(s["field"])}</td>'
                  f'<td><code>{_e(s["value"])}</code></td><td>{_e(s["message"])}</td></tr>\n')
            w("</table>\n</details>\n")
        if d["count"] > len(d["samples"]):
            rest = f"{d['count'] - len(d['samples']):,}"
            w(f'<p>{_e(L["not_listed"].format(n=rest))}</p>\n')
        w("</section>\n")
    w("</main>\n</body>\n</html>\n")
    return "".join(out)


# ---------------------------------------------------------------- realtime (issue 15)
#
# A realtime feed's validation is reported per archived hour in the realtime feed's own folder,
# reports/<realtime feed id>/<YYYY-MM-DDTHH>/report.{json,html}, in the same shape and page as a
# static version's report: the hour is the realtime feed's "version", and the page names the static
# feed version it was checked against. The static feed's report is written once, when that version
# is ingested; realtime hours keep arriving for as long as the version is in service.


def rt_report_version(date: str, hour: int) -> str:
    """Return the name of a realtime hour's report folder: 'YYYY-MM-DDTHH' (UTC)."""
    return f"{date}T{int(hour):02d}"


def build_rt_report(ws, feed_id: str, date: str, hour: int, *, files: dict | None = None, static_feed_id: str | None = None,
                    tz: str | None = None, sample_limit: int = SAMPLE_LIMIT) -> dict:
    """Return the report of one realtime hour from ``rt.notices`` / ``rt.notice_counts`` (every code: the realtime rules
    and the timetable match). ``files`` is {part: {rows_in, accepted, quarantined}} counted in snapshots; if None, the
    hour's earlier report's counts are kept. ``static_feed_id`` and ``tz`` default to the realtime feed's row in ``rt.feeds``.
    The page is Japanese when the static version is (profile gtfs-jp, agency_lang ja) or the feed's time zone is Asia/Tokyo."""
    from transforms.rules.registry import rule_codes
    from warehouse.publish import connect

    version = rt_report_version(date, hour)
    con = connect(ws, read_only=True)
    try:
        def rows(sql: str, args: list) -> list:
            try:
                return con.execute(sql, args).fetchall()
            except duckdb.CatalogException:  # nothing of that kind published yet
                return []

        where = "feed_id = ? AND date = ?::DATE AND hour = ?"
        counts = rows(f"SELECT code, severity, sum(notices), max(static_feed_version) FROM rt.notice_counts WHERE {where} "
                      "GROUP BY ALL", [feed_id, date, int(hour)])
        sample_rows = rows(f"SELECT code, severity, file, line, field, value, message FROM (SELECT *, row_number() OVER "
                           f"(PARTITION BY code, severity ORDER BY file NULLS FIRST, line NULLS FIRST, field) AS n FROM rt.notices "
                           f"WHERE {where}) WHERE n <= {int(sample_limit)} ORDER BY code, severity, n", [feed_id, date, int(hour)])
        feed = rows("SELECT static_feed_id, timezone FROM rt.feeds WHERE feed_id = ?", [feed_id])
        static_id, tz = static_feed_id or (feed[0][0] if feed else None), tz or (feed[0][1] if feed else None)
        static_version = next((v for *_, v in counts if v), None)
        profile = rows("SELECT profile FROM meta.feed_versions WHERE feed_id = ? AND feed_version = ?", [static_id, static_version])
        langs = [r[0] for r in rows("SELECT DISTINCT lower(trim(CAST(agency_lang AS VARCHAR))) FROM gtfs.agency WHERE feed_id = ? "
                                    "AND feed_version = ? AND agency_lang IS NOT NULL", [static_id, static_version])]
    finally:
        con.close()
    samples: dict[tuple[str, str], list[dict]] = {}
    for code, sev, file, line, fld, value, message in sample_rows:
        samples.setdefault((code, sev), []).append({"file": file, "line": line, "field": fld, "value": value, "message": message})
    rules = rule_codes()
    notices = []
    for code, sev, n, _ in counts:
        rule = rules.get(code)
        ex = samples.get((code, sev), [])
        notices.append({"code": code, "severity": sev, "count": int(n), "blocks": False,
                        "why": (rule.why if rule else (ex[0]["message"] if ex else "")) or "", "fix": (rule.fix if rule else "") or "",
                        "why_ja": (rule.why_ja if rule else "") or "", "fix_ja": (rule.fix_ja if rule else "") or "",
                        "samples_total": len(ex), "samples": ex})
    notices.sort(key=lambda d: (_SEV_ORDER.get(d["severity"], 9), -d["count"], d["code"]))
    if files is None:
        try:
            files = json.loads((report_dir(ws, feed_id, version) / "report.json").read_text(encoding="utf-8")).get("files") or {}
        except (OSError, ValueError):
            files = {}
    profile_name = profile[0][0] if profile else None
    japanese = is_japanese(profile_name, langs) or tz == "Asia/Tokyo"
    return {
        "report_format": REPORT_FORMAT, "kind": "gtfs-rt", "feed_id": feed_id, "feed_version": version, "feed_name": feed_id,
        "operator": None, "validation_date": date, "hour": int(hour),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": "gtfs-rt", "languages": langs, "language": "ja" if japanese else "en", "source": None,
        "static_feed": f"{static_id} {static_version}" if static_id and static_version else static_id,
        "static_feed_id": static_id, "static_feed_version": static_version, "content_sha256": None,
        "service_start": None, "service_end": None,
        "rows": {k: sum((f.get(key) or 0) for f in files.values())
                 for k, key in (("in", "rows_in"), ("accepted", "accepted"), ("quarantined", "quarantined"))},
        "files": files,
        "totals": {s: sum(d["count"] for d in notices if d["severity"] == s) for s in SEVERITIES},
        "counts": {s: {d["code"]: d["count"] for d in notices if d["severity"] == s} for s in SEVERITIES},
        "policy": {"status": "pass", "blocked_by": {}, "reason": "", "rules": None},  # realtime notices are reported, never blocking
        "notices": notices,
    }
