"""The download catalog: a static site under ``exports/site/`` plus machine-readable listings.

- ``index.html``: every export and feed with its current version, validity, validation status,
  licence and download links (Japanese and English labels); one page per export and per feed.
- ``catalog.json``: one entry per export and feed, with the fields of the Mobility Database
  catalogs (mdb_source_id, data_type, provider, name, location with bounding_box, urls,
  status, features) and a ``noriba`` block (version, sha256, validity, validation).
- ``files.json``: the listing of the Japanese GTFS data repository's ``/files`` API
  (organization, feed, prefecture, validity dates, file URL); ``noriba serve`` answers
  ``/files?pref=<code>&target_date=<YYYY-MM-DD>`` from it.

Pages are self-contained HTML (inline CSS, no script, no CDN) with relative links, so the
``exports/`` folder can be published as it is. The site is rebuilt after each export.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

from warehouse.workspace import Workspace

SITE = "site"
#: A feed whose service ends within this many days is marked as expiring soon.
EXPIRING_DAYS = 30
#: What the catalog says of a published file whose publisher stated no licence.
NO_LICENSE = "not stated"
LATEST = "latest.zip"
#: JIS X 0401 prefecture codes.
PREFECTURES = ("北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県",
               "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県",
               "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
               "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県")

CSS = """
body{font-family:system-ui,"Hiragino Sans","Noto Sans CJK JP","Yu Gothic",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#0b5394;color:#fff;padding:14px 24px}header a{color:#fff}main{max-width:1100px;margin:0 auto;padding:16px 24px}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:2px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}td.num{text-align:right}code,.sha{font-family:ui-monospace,monospace;font-size:.82rem;word-break:break-all}
.ok{color:#116329;font-weight:600}.warn{color:#9a6700;font-weight:600}.err{color:#cf222e;font-weight:600}
.en{color:#57606a;font-size:.85em}a.dl{display:inline-block;background:#0b5394;color:#fff;padding:3px 10px;border-radius:4px;text-decoration:none}
footer{color:#57606a;font-size:.8rem;padding:24px}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def label(ja: str, en: str) -> str:
    """Return a bilingual label: Japanese, then English in a muted span."""
    return f'{_e(ja)} <span class="en">{_e(en)}</span>'


def _page(title: str, body: str, *, depth: int) -> str:
    up = "../" * depth
    return (f'<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f'<header><a href="{up}index.html">Noriba データカタログ <span class="en">data catalog</span></a><h1>{_e(title)}</h1></header>'
            f"<main>{body}</main><footer>Noriba (乗り場) — generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}; "
            f'<a href="{up}catalog.json">catalog.json</a> · <a href="{up}files.json">files.json</a></footer></body></html>\n')


def _sha256(path: Path) -> str:
    from warehouse.export import sha256_of

    return sha256_of(path)


def _status(errors: int, warnings: int) -> str:
    if errors:
        return f'<span class="err">エラー {errors:,} 件</span> <span class="en">{errors:,} errors</span>'
    if warnings:
        return f'<span class="warn">警告 {warnings:,} 件</span> <span class="en">{warnings:,} warnings</span>'
    return '<span class="ok">問題なし</span> <span class="en">no problems</span>'


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def is_public(spec: dict) -> bool:
    """Return whether a feed goes in the public catalog: as its spec's ``publish`` says, else when it has a licence.

    A one-off ``noriba ingest`` has no licence, so it stays out unless asked (``--publish``).
    """
    if spec.get("publish") is not None:
        return bool(spec["publish"])
    lic = spec.get("license") or {}
    return bool(lic.get("id") or lic.get("text"))


def license_id(lic: dict | None) -> str:
    """Return the licence a file carries, as the catalog names it (``not stated`` when none was given)."""
    lic = lic or {}
    return lic.get("id") or lic.get("text") or NO_LICENSE


def validity(start: str | None, end: str | None, today: date) -> tuple[str, int | None]:
    """Return (current | expiring | expired | future | unknown, days left to the last service day) on ``today``.

    ``expiring`` means the service ends within :data:`EXPIRING_DAYS` days: a timetable change (改正) is due.
    """
    try:
        last = date.fromisoformat(str(end)[:10]) if end else None
        first = date.fromisoformat(str(start)[:10]) if start else None
    except ValueError:  # not a date: say nothing rather than guess
        return "unknown", None
    if last is None:
        return "unknown", None
    left = (last - today).days
    if left < 0:
        return "expired", left
    if first and first > today:
        return "future", left
    return ("expiring" if left <= EXPIRING_DAYS else "current"), left


def _validity_html(state: str, left: int | None) -> str:
    if state == "expired":
        return ' <span class="err">期限切れ</span> <span class="en">expired</span>'
    if state == "expiring":
        return f' <span class="warn">まもなく期限切れ（残り {left} 日）</span> <span class="en">expires in {left} days</span>'
    if state == "future":
        return ' <span class="en">(開始前 not yet valid)</span>'
    return ""


def _license_html(lic: dict) -> str:
    if license_id(lic) == NO_LICENSE:
        return label("ライセンス未記載", "licence not stated")
    return _e(license_id(lic))


def pref_code(name: str | None) -> int | None:
    """Return the JIS prefecture code (1–47) of a prefecture name, or None."""
    if not name:
        return None
    for i, p in enumerate(PREFECTURES, start=1):
        if name in (p, p[:-1] if p[-1] in "都府県" else p):  # 東京都 or 東京, 京都府 or 京都; 北海道 whole
            return i
    return None


def collect(ws: Workspace, *, today: date | None = None) -> dict:
    """Return what the catalog lists: the public feeds (latest versions in the lake) and the exports (latest builds).

    A feed is public when :func:`is_public` says so; each feed and export carries its ``validity`` on ``today``.
    """
    from warehouse.versions import latest_versions

    today = today or date.today()
    feeds = []
    for fid, meta in latest_versions(ws).items():
        spec = json.loads(meta.get("spec") or "{}")
        if not is_public(spec):
            continue
        ver = meta["feed_version"]
        z = ws.exports / "gtfs" / fid / f"{fid}_{ver}.zip"
        muni = spec.get("municipality") or {}
        feeds.append({
            "feed_id": fid, "feed_version": ver, "name": spec.get("name") or fid, "operator": spec.get("operator"),
            "municipality": muni, "license": spec.get("license") or {}, "tags": spec.get("tags") or [],
            "service_start": meta.get("service_start"), "service_end": meta.get("service_end"), "profile": meta.get("profile"),
            "errors": meta.get("errors") or 0, "warnings": meta.get("warnings") or 0, "infos": meta.get("infos") or 0,
            "notice_codes": json.loads(meta.get("notice_codes") or "{}"), "ingested_at": meta.get("ingested_at"),
            "validation_date": meta.get("validation_date"), "content_sha256": meta.get("content_sha256"),
            "zip": z if z.exists() else None, "sha256": _sha256(z) if z.exists() else None, "bytes": z.stat().st_size if z.exists() else None,
        })
        feeds[-1]["flex"] = flex_counts(ws, fid, ver)
        feeds[-1]["validity"], feeds[-1]["days_left"] = validity(meta.get("service_start"), meta.get("service_end"), today)
    exports = []
    for latest in sorted(ws.exports.glob("*/latest.json")):
        d = latest.parent
        info = json.loads(latest.read_text(encoding="utf-8"))
        mpath = d / info["dir"] / "manifest.json"
        if mpath.exists():
            m = json.loads(mpath.read_text(encoding="utf-8"))
            state, left = validity((m.get("service") or {}).get("start"), (m.get("service") or {}).get("end"), today)
            exports.append({"dir": d / info["dir"], "manifest": m, "validity": state, "days_left": left})
    reports = {}
    for r in sorted((ws.exports / "reports").glob("*/index.html")):
        meta = r.parent / "report.json"
        reports[r.parent.name] = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {"name": r.parent.name}
    return {"feeds": feeds, "exports": exports, "reports": reports, "tides": tides_packages(ws, {f["feed_id"] for f in feeds})}


def tides_packages(ws: Workspace, public: set[str]) -> list[dict]:
    """Return the TIDES tables written per realtime feed and service date (exports/tides/<feed>/<date>/datapackage.json),
    newest date first, of the realtime feeds whose static feed is public (listed in the catalog). A package that cannot be
    read is left out."""
    out = []
    for pkg in sorted(ws.exports.glob("tides/*/*/datapackage.json"), key=lambda p: (p.parent.parent.name, p.parent.name)):
        try:
            info = json.loads((ws.raw_dir(pkg.parent.parent.name) / "rt" / "feed.json").read_text(encoding="utf-8"))
            meta = json.loads(pkg.read_text(encoding="utf-8"))
            resources = [(str(r["name"]), str(r["path"]), int(r["rows"])) for r in meta["resources"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if info.get("static_feed_id") not in public:
            continue
        files = {name: pkg.parent / path for name, path, _ in resources if "/" not in path and (pkg.parent / path).is_file()}
        out.append({"feed_id": pkg.parent.parent.name, "static_feed_id": info["static_feed_id"], "date": pkg.parent.name,
                    "package": pkg, "rows": {name: rows for name, _, rows in resources}, "files": files,
                    "problems": len(meta.get("problems") or {})})
    out.sort(key=lambda t: (t["feed_id"], t["date"]), reverse=True)
    return out


def _tides_html(ws: Workspace, tides: list[dict]) -> str:
    """Return the index's section listing the TIDES tables (observed service from realtime data), one row per feed and day."""
    if not tides:
        return ""
    names = (("vehicle_locations", "車両位置", "vehicle locations"), ("trips_performed", "運行した便", "trips performed"),
             ("stop_visits", "停留所の発着", "stop visits"))
    body = (f"<h2>{label('リアルタイム運行実績（TIDES）', 'observed service from realtime data (TIDES)')}</h2>"
            f"<table><tr><th>{label('リアルタイムフィード', 'realtime feed')}</th><th>{label('運行日', 'service date')}</th>"
            + "".join(f"<th>{label(ja, en)}</th>" for _, ja, en in names) + f"<th>{label('説明', 'description')}</th></tr>")
    for t in tides:
        cells = []
        for name, _, _ in names:
            n = t["rows"].get(name)
            f = t["files"].get(name)
            shown = "" if n is None else f"{n:,}"
            if f is not None and n is not None:
                shown = f'<a href="{_e(_rel(ws, f, 0))}" title="Parquet">{shown}</a>'
            cells.append(f'<td class="num">{shown}</td>')
        body += (f'<tr><td><code>{_e(t["feed_id"])}</code><br><span class="en">{_e(t["static_feed_id"])}</span></td><td>{_e(t["date"])}</td>'
                 + "".join(cells) + f'<td><a href="{_e(_rel(ws, t["package"], 0))}">datapackage.json</a></td></tr>')
    return body + "</table>"


def _rel(ws: Workspace, path: Path, depth: int) -> str:
    """Return the link from a page ``depth`` folders below exports/site/ to a file under exports/."""
    return "../" * (depth + 1) + path.relative_to(ws.exports).as_posix()


def _latest_html(ws: Workspace, latest: Path, sha256: str) -> str:
    """Return the line giving the stable URL that always serves the current GTFS zip."""
    return (f'<p>{label("常に最新版を指す URL", "stable URL of the current version")}: '
            f'<a class="latest" href="{_e(_rel(ws, latest, 1))}" data-sha256="{_e(sha256)}">{_e(latest.relative_to(ws.exports).as_posix())}</a></p>')


def _feed_page(ws: Workspace, f: dict, reports: dict) -> str:
    lic = f["license"]
    muni = f["municipality"]
    rows = [
        (label("フィード ID", "feed id"), f"<code>{_e(f['feed_id'])}</code>"),
        (label("事業者", "operator"), _e(f["operator"] or "")),
        (label("自治体", "municipality"), _e(" ".join(x for x in (muni.get("prefecture"), muni.get("name")) if x)) + (f" ({_e(muni.get('code'))})" if muni.get("code") else "")),
        (label("現行バージョン", "current version"), f"<code>{_e(f['feed_version'])}</code> ({_e(f['ingested_at'])})"),
        (label("有効期間", "valid"), f"{_e(f['service_start'] or '?')} – {_e(f['service_end'] or '?')}" + _validity_html(f["validity"], f["days_left"])),
        (label("検証結果", "validation"), _status(f["errors"], f["warnings"])
         + f' · <a href="{_e(f.get("report") or "#validation")}">詳細 <span class="en">report</span></a>'),
        (label("ライセンス", "licence"), _license_html(lic) + (f" — {_e(lic.get('attribution'))}" if lic.get("attribution") else "")),
    ]
    if f.get("flex"):
        rows.append((label("デマンド交通 (GTFS-Flex)", "demand-responsive (GTFS-Flex)"), flex_html(f["flex"])))
    code = str(muni.get("code") or "")
    if code in reports:
        rows.append((label("自治体レポート", "municipality report"), f'<a href="../../reports/{_e(code)}/index.html">{_e(reports[code].get("name") or code)}</a>'))
    body = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    body += f"<h2>{label('ダウンロード', 'downloads')}</h2>"
    if f["zip"]:
        body += ("<table><tr><th>" + label("形式", "format") + "</th><th>" + label("ファイル", "file") + "</th><th>" + label("サイズ", "size")
                 + "</th><th>sha256</th></tr>"
                 f'<tr><td>GTFS{"-JP" if f["profile"] == "gtfs-jp" else ""} (zip)</td><td><a class="dl" href="{_e(_rel(ws, f["zip"], 1))}" '
                 f'data-sha256="{f["sha256"]}">{_e(f["zip"].name)}</a></td><td class="num">{_size(f["bytes"])}</td>'
                 f'<td class="sha">{f["sha256"]}</td></tr></table>' + _latest_html(ws, f["zip"].parent / LATEST, f["sha256"]))
    else:
        body += "<p>" + label("エクスポート未作成（noriba export で作成）", "not exported yet (run noriba export)") + "</p>"
    body += f'<h2 id="validation">{label("検証レポート", "validation report")}</h2>'
    body += (f"<p>{label('検証日', 'validated for')}: {_e(f['validation_date'])} · ERROR {f['errors']:,} · WARNING {f['warnings']:,} · INFO {f['infos']:,}</p>")
    if f["notice_codes"]:
        body += "<table><tr><th>" + label("コード", "code") + "</th><th>" + label("件数", "count") + "</th></tr>"
        body += "".join(f"<tr><td><code>{_e(c)}</code></td><td class='num'>{n:,}</td></tr>" for c, n in f["notice_codes"].items())
        body += "</table>"
    else:
        body += "<p>" + label("指摘事項はありません。", "Nothing to report.") + "</p>"
    return _page(f"{f['name']}", body, depth=1)


def _new_list(new: dict) -> str:
    """Return 'code 63 (inputs 0), …' for the codes a merge found more often than its inputs."""
    return ", ".join(f"{c} {e['count']:,} (入力 inputs {e['inputs']:,})" for c, e in new.items())


def _export_page(ws: Workspace, x: dict) -> str:
    m, d = x["manifest"], x["dir"]
    lic = m.get("license") or {}
    val = m.get("validation") or {}
    new = val.get("new_errors") or {}
    found_err = sum(e["count"] for e in (val.get("found") or {}).values() if e["severity"] == "ERROR")
    found_warn = sum(e["count"] for e in (val.get("found") or {}).values() if e["severity"] == "WARNING")
    vtxt = _status(found_err, found_warn)
    new_warn = val.get("new_warnings") or {}
    vtxt += (' · <span class="ok">入力にない新たなエラーなし</span> <span class="en">no error its inputs did not have</span>' if not new
             else f' · <span class="err">新たなエラー <span class="en">new errors</span> {_e(_new_list(new))}</span>')
    if "new_warnings" in val:  # manifests written before new warnings were counted say nothing about them
        vtxt += (' · <span class="ok">入力にない新たな警告なし</span> <span class="en">no warning its inputs did not have</span>' if not new_warn
                 else f' · <span class="warn">新たな警告 <span class="en">new warnings</span> {_e(_new_list(new_warn))}</span>')
    service = m.get("service") or {}
    rows = [
        (label("エクスポート ID", "export id"), f"<code>{_e(m['export_id'])}</code>"),
        (label("名称", "name"), _e(m.get("name")) + (f" <span class='en'>{_e(m.get('name_en'))}</span>" if m.get("name_en") else "")),
        (label("現行バージョン", "current version"), f"<code>{_e(m['export_version'])}</code>"),
        (label("有効期間", "valid"), f"{_e(service.get('start') or '?')} – {_e(service.get('end') or '?')}" + _validity_html(x["validity"], x["days_left"])),
        (label("検証結果", "validation"), vtxt + ' · <a href="#validation">詳細 <span class="en">report</span></a>'),
        (label("ライセンス", "licence"), _license_html(lic) + (f" — {_e(lic.get('attribution'))}" if lic.get("attribution") else "")
         + (f' (<a href="{_e(lic["url"])}">{_e(lic["url"])}</a>)' if lic.get("url") else "")),
    ]
    body = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    body += f"<h2>{label('ダウンロード', 'downloads')}</h2><table><tr><th>{label('形式', 'format')}</th><th>{label('ファイル', 'file')}</th><th>{label('サイズ', 'size')}</th><th>sha256</th></tr>"
    names = {"gtfs": "GTFS (zip)", "parquet": "Parquet / GeoParquet (zip)", "duckdb": "DuckDB", "csv": "CSV UTF-8 BOM (zip, Excel)",
             "crosswalk": label("ID 対応表", "id crosswalk") + " (CSV)", "data_dictionary": label("データ辞書", "data dictionary") + " (Markdown)"}
    for key, info in (m.get("files") or {}).items():
        p = d / info["path"]
        body += (f'<tr><td>{names.get(key, _e(key))}</td><td><a class="dl" href="{_e(_rel(ws, p, 1))}" data-sha256="{_e(info.get("sha256"))}">'
                 f'{_e(p.name)}</a></td><td class="num">{_size(info.get("bytes") or (p.stat().st_size if p.exists() else None))}</td>'
                 f'<td class="sha">{_e(info.get("sha256"))}</td></tr>')
    man = d / "manifest.json"
    body += f'<tr><td>{label("マニフェスト", "manifest")} (JSON)</td><td><a href="{_e(_rel(ws, man, 1))}">manifest.json</a></td><td></td><td></td></tr></table>'
    if (m.get("files") or {}).get("gtfs"):
        body += _latest_html(ws, d.parent / LATEST, m["files"]["gtfs"]["sha256"])
    body += f"<h2>{label('入力フィード', 'input feeds')}</h2><table><tr><th>{label('フィード', 'feed')}</th><th>{label('バージョン', 'version')}</th><th>{label('名前空間', 'namespace')}</th><th>{label('有効期間', 'valid')}</th></tr>"
    for i in m.get("inputs", []):
        body += (f'<tr><td><a href="../feeds/{_e(i["feed_id"])}.html">{_e(i["feed_id"])}</a></td><td><code>{_e(i["feed_version"])}</code></td>'
                 f'<td><code>{_e(i["namespace"])}</code></td><td>{_e(i.get("service_start"))} – {_e(i.get("service_end"))}</td></tr>')
    body += "</table>"
    coll = m.get("collision_counts") or {}
    body += f"<h2>{label('統合の記録', 'merge record')}</h2><ul>"
    body += f"<li>{label('ID の衝突（名前空間を付与）', 'colliding ids (namespaced)')}: " + (", ".join(f"{_e(k)} {v:,}" for k, v in coll.items()) or "0") + "</li>"
    body += f"<li>{label('統合した停留所', 'stops unified')}: {sum(len(g['unified']) for g in m.get('unified_stops', [])):,}</li>"
    body += f"<li>{label('統合しなかった近接同名停留所', 'same-name stops kept apart')}: {len(m.get('stops_not_unified', [])):,}</li>"
    left = m.get("left_out") or {}
    body += f"<li>{label('含めなかったもの', 'left out')}: " + ", ".join(f"{_e(k)} {len(v):,}" for k, v in left.items()) + "</li>"
    if m.get("extract"):
        a = (m["extract"].get("area") or {})
        body += (f"<li>{label('切り出し', 'extract')}: {label('区間を短縮した便', 'trips cut')} {len(a.get('trips_cut', [])):,}, "
                 f"{label('削除した便', 'trips removed')} {len(a.get('trips_removed_leaving_fewer_than_2_stops', [])):,}</li>")
    body += "</ul>"
    if m.get("problems"):
        body += f'<h2 id="problems">{label("統合での注意", "merge warnings")}</h2><ul>'
        for p in m["problems"]:
            ja = f'{_e(p["message_ja"])}<br><span class="en">{_e(p["message"])}</span>' if p.get("message_ja") else _e(p["message"])
            body += f'<li class="warn"><code>{_e(p["code"])}</code>: {ja}</li>'
        body += "</ul>"
    body += f'<h2 id="validation">{label("検証レポート", "validation report")}</h2>'
    body += f"<p>{label('検証日', 'validated for')}: {_e(val.get('validation_date'))}</p>"
    if val.get("found"):
        body += (f"<table><tr><th>{label('コード', 'code')}</th><th>{label('重大度', 'severity')}</th><th>{label('件数', 'count')}</th>"
                 f"<th>{label('入力での件数', 'in the inputs')}</th><th>{label('統合で新たに', 'new in the merge')}</th></tr>")
        for c, e in sorted(val["found"].items()):
            had = (val.get("inputs") or {}).get(c, {}).get("count", 0)
            mark = (f'<span class="{"err" if e["severity"] == "ERROR" else "warn"}">+{e["count"] - had:,}</span>'
                    if c in new or c in new_warn else "")
            body += (f"<tr><td><code>{_e(c)}</code></td><td>{_e(e['severity'])}</td><td class='num'>{e['count']:,}</td>"
                     f"<td class='num'>{had:,}</td><td class='num'>{mark}</td></tr>")
        body += "</table>"
    else:
        body += "<p>" + label("指摘事項はありません。", "Nothing to report.") + "</p>"
    return _page(m.get("name") or m["export_id"], body, depth=1)


def _index(ws: Workspace, data: dict) -> str:
    body = f"<h2>{label('地域データ（統合・切り出し）', 'regional exports (merged, extracted)')}</h2>"
    body += f"<table><tr><th>{label('名称', 'name')}</th><th>{label('バージョン', 'version')}</th><th>{label('有効期間', 'valid')}</th><th>{label('フィード数', 'feeds')}</th><th>{label('検証', 'validation')}</th><th>{label('ライセンス', 'licence')}</th><th>GTFS</th></tr>"
    for x in data["exports"]:
        m = x["manifest"]
        s = m.get("service") or {}
        val = m.get("validation") or {}
        ok = '<span class="ok">OK</span>' if not val.get("new_errors") else '<span class="err">NG</span>'
        g = (m.get("files") or {}).get("gtfs")
        dl = f'<a class="dl" href="{_e(_rel(ws, x["dir"] / g["path"], 0))}" data-sha256="{_e(g["sha256"])}">zip</a>' if g else ""
        body += (f'<tr><td><a href="exports/{_e(m["export_id"])}.html">{_e(m.get("name"))}</a><br><span class="en">{_e(m.get("name_en"))}</span></td>'
                 f'<td><code>{_e(m["export_version"])}</code></td><td>{_e(s.get("start"))} – {_e(s.get("end"))}{_validity_html(x["validity"], x["days_left"])}</td>'
                 f'<td class="num">{len(m.get("inputs", []))}</td><td>{ok}</td><td>{_license_html(m.get("license") or {})}</td><td>{dl}</td></tr>')
    body += "</table>"
    body += f"<h2>{label('フィード', 'feeds')}</h2>"
    body += f"<table><tr><th>{label('フィード', 'feed')}</th><th>{label('バージョン', 'version')}</th><th>{label('有効期間', 'valid')}</th><th>{label('検証', 'validation')}</th><th>{label('ライセンス', 'licence')}</th><th>GTFS</th></tr>"
    for f in data["feeds"]:
        dl = f'<a class="dl" href="{_e(_rel(ws, f["zip"], 0))}" data-sha256="{f["sha256"]}">zip</a>' if f["zip"] else ""
        body += (f'<tr><td><a href="feeds/{_e(f["feed_id"])}.html">{_e(f["name"])}</a><br><code>{_e(f["feed_id"])}</code></td>'
                 f'<td><code>{_e(f["feed_version"])}</code></td><td>{_e(f["service_start"])} – {_e(f["service_end"])}{_validity_html(f["validity"], f["days_left"])}</td>'
                 f'<td>{_status(f["errors"], f["warnings"])}</td><td>{_license_html(f["license"])}</td><td>{dl}</td></tr>')
    body += "</table>"
    body += _tides_html(ws, data.get("tides") or [])
    if data["reports"]:
        body += f"<h2>{label('自治体レポート', 'municipality reports')}</h2><ul>"
        for code, r in data["reports"].items():
            body += f'<li><a href="../reports/{_e(code)}/index.html">{_e(r.get("name") or code)}</a> <span class="en">{_e(r.get("name_en") or "")}</span></li>'
        body += "</ul>"
    return _page("公共交通データ カタログ / Transit data catalog", body, depth=0)


def _mdb_entry(*, kind: str, ident: str, provider: str, name: str, country: str | None, subdivision: str | None, municipality: str | None,
               bbox: list | None, url: str, latest: str | None, license_url: str | None, features: list[str], state: str,
               noriba: dict) -> dict:
    """Return one source in the Mobility Database catalogs' shape (mdb_source_id is assigned by the Mobility Database, so null)."""
    loc = {"country_code": country, "subdivision_name": subdivision, "municipality": municipality}
    if bbox:
        loc["bounding_box"] = {"minimum_latitude": bbox[1], "maximum_latitude": bbox[3], "minimum_longitude": bbox[0],
                               "maximum_longitude": bbox[2], "extracted_on": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return {"mdb_source_id": None, "data_type": "gtfs", "provider": provider, "name": name, "location": loc,
            "urls": {"direct_download": url, "latest": latest or url, "license": license_url, "authentication_type": 0},
            "status": "inactive" if state == "expired" else "active", "features": features, "redirect": [], "noriba": {"kind": kind, "id": ident, **noriba}}


def _feed_bbox(ws: Workspace, f: dict) -> list | None:
    import duckdb

    part = ws.lake_partition("gtfs_stops", f["feed_id"], f["feed_version"]) / "part-0.parquet"
    if not part.exists():
        return None
    con = duckdb.connect()
    r = con.sql(f"SELECT min(stop_lon), min(stop_lat), max(stop_lon), max(stop_lat) FROM read_parquet('{part}', hive_partitioning=false)").fetchall()[0]
    con.close()
    return None if r[0] is None else [round(v, 6) for v in r]


def catalog_json(ws: Workspace, data: dict, *, base_url: str = "", locations: dict | None = None) -> dict:
    """Return catalog.json: every export and feed as a Mobility Database catalog source, URLs under ``base_url``."""
    def url(p: Path) -> str:
        return f"{base_url.rstrip('/')}/{p.relative_to(ws.exports).as_posix()}"

    sources = []
    for x in data["exports"]:
        m = x["manifest"]
        g = m["files"]["gtfs"]
        lic = m.get("license") or {}
        val = m.get("validation") or {}
        sources.append(_mdb_entry(
            kind="export", ident=m["export_id"], provider=(m.get("publisher") or {}).get("name") or "Noriba", name=m.get("name_en") or m.get("name"),
            country=None, subdivision=None, municipality=None, bbox=m.get("bbox"), url=url(x["dir"] / g["path"]),
            latest=url(x["dir"].parent / LATEST), license_url=lic.get("url"), state=x["validity"],
            features=sorted(({"fares-v1"} if m.get("rows_out", {}).get("fare_attributes") else set())
                            | ({"flex"} if any(m.get("rows_out", {}).get(t) for t in FLEX_TABLES) else set())),
            noriba={"version": m["export_version"], "sha256": g["sha256"], "service_start": (m.get("service") or {}).get("start"),
                    "service_end": (m.get("service") or {}).get("end"), "validity": x["validity"], "days_left": x["days_left"],
                    "license": license_id(lic), "attribution": lic.get("attribution"),
                    "feeds": [i["feed_id"] for i in m.get("inputs", [])], "validation": "no new errors" if not val.get("new_errors") else "new errors",
                    "page": f"{base_url.rstrip('/')}/{SITE}/exports/{m['export_id']}.html"}))
        sources[-1]["location"].update((locations or {}).get(m["export_id"]) or {})
    for f in data["feeds"]:
        muni = f["municipality"] or {}
        lic = f["license"] or {}
        sources.append(_mdb_entry(
            kind="feed", ident=f["feed_id"], provider=f["operator"] or f["name"], name=f["name"],
            country="JP" if muni.get("prefecture") or f["profile"] == "gtfs-jp" else None, subdivision=muni.get("prefecture"),
            municipality=muni.get("name"), bbox=_feed_bbox(ws, f), url=url(f["zip"]) if f["zip"] else None,
            latest=url(f["zip"].parent / LATEST) if f["zip"] else None, license_url=lic.get("url"), state=f["validity"],
            features=["flex"] if f.get("flex") else [], noriba={"version": f["feed_version"], "sha256": f["sha256"], "service_start": f["service_start"],
                                 "service_end": f["service_end"], "validity": f["validity"], "days_left": f["days_left"],
                                 "license": license_id(lic), "attribution": lic.get("attribution"),
                                 "validation": {"errors": f["errors"], "warnings": f["warnings"], "infos": f["infos"]},
                                 "page": f"{base_url.rstrip('/')}/{SITE}/feeds/{f['feed_id']}.html"}))
    return {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sources": sources}


def files_listing(ws: Workspace, data: dict, *, base_url: str = "", locations: dict | None = None) -> list[dict]:
    """Return the rows of the GTFS data repository's /files listing: one per feed file and per merged export, with
    prefecture, validity, licence and both the versioned and the stable latest URL."""
    def url(p: Path) -> str:
        return f"{base_url.rstrip('/')}/{p.relative_to(ws.exports).as_posix()}"

    rows = []
    for x in data["exports"]:
        m = x["manifest"]
        g = (m.get("files") or {}).get("gtfs")
        if not g:
            continue
        service = m.get("service") or {}
        loc = (locations or {}).get(m["export_id"]) or {}
        publisher = (m.get("publisher") or {}).get("name") or "Noriba"
        rows.append({
            "organization_id": publisher, "organization_name": publisher, "feed_id": m["export_id"], "feed_name": m.get("name"),
            "feed_kind": "export", "feed_pref_id": pref_code(loc.get("subdivision_name")), "feed_municipality_code": None,
            "feed_license_id": license_id(m.get("license")), "file_uid": m["export_version"], "file_from_date": service.get("start"),
            "file_to_date": service.get("end"), "file_status": x["validity"], "file_published_at": None,
            "file_url": url(x["dir"] / g["path"]), "file_latest_url": url(x["dir"].parent / LATEST), "file_sha256": g["sha256"],
        })
    for f in data["feeds"]:
        if not f["zip"]:
            continue
        muni = f["municipality"] or {}
        rows.append({
            "organization_id": (f["operator"] or f["feed_id"]), "organization_name": f["operator"] or f["name"],
            "feed_id": f["feed_id"], "feed_name": f["name"], "feed_kind": "feed", "feed_pref_id": pref_code(muni.get("prefecture")),
            "feed_municipality_code": muni.get("code"), "feed_license_id": license_id(f["license"]),
            "file_uid": f["feed_version"], "file_from_date": f["service_start"], "file_to_date": f["service_end"],
            "file_status": f["validity"], "file_published_at": f["ingested_at"], "file_url": url(f["zip"]),
            "file_latest_url": url(f["zip"].parent / LATEST), "file_sha256": f["sha256"],
        })
    return rows


def parse_pref(pref: str) -> int:
    """Return the JIS X 0401 prefecture code (1–47) of ``pref``: a code (``01`` or ``1``) or a name (``北海道``).

    If it is neither, then raise ValueError saying what is expected.
    """
    text = str(pref).strip()
    code = int(text) if text.isascii() and text.isdigit() else pref_code(text)
    if code is None or not 1 <= code <= len(PREFECTURES):
        raise ValueError(f"pref {text!r} is not a prefecture: give a JIS prefecture code 01–47 (e.g. 01 for 北海道, 13 for 東京都) "
                         f"or a prefecture name")
    return code


def parse_target_date(text: str) -> date:
    """Return the date written ``YYYY-MM-DD``. If it is not a real date in that form, then raise ValueError saying so."""
    import re

    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"target_date {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-06-01") from None


def filter_files(rows: list[dict], *, pref: str | None = None, target_date: str | None = None) -> list[dict]:
    """Return the listing rows of prefecture ``pref`` (code or name) valid on ``target_date`` (YYYY-MM-DD).

    If ``pref`` or ``target_date`` is not valid, then raise ValueError saying what is expected.
    """
    out = rows
    if pref:
        code = parse_pref(pref)
        out = [r for r in out if r["feed_pref_id"] == code]
    if target_date:
        day = parse_target_date(target_date).isoformat()
        out = [r for r in out if (r["file_from_date"] or "0000") <= day <= (r["file_to_date"] or "9999")]
    return out


def _link_latest(target: Path, link: Path, *, copy: bool = False) -> None:
    """Make ``link`` the same file as ``target`` (a hard link, else a copy), replaced atomically. If ``copy`` (an
    object-store home: sending a file stamps it with the stored object's time, and a hard link would stamp ``target``
    too, which then looks changed and is sent again, and so on), then always a copy of its own, made only when its
    bytes differ."""
    import filecmp

    if link.exists() and (filecmp.cmp(target, link, shallow=False) if copy else os.path.samefile(target, link)):
        return  # already the same file (and rename(2) of two links to one inode would leave the temporary link)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if copy:
            raise OSError("a copy of its own")
        os.link(target, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(target, tmp)
    os.replace(tmp, link)


def build_site(ws: Workspace, *, base_url: str | None = None, locations: dict | None = None, today: date | None = None) -> Path:
    """Return the path of the catalog's index.html after rebuilding the whole site under ``exports/site/``.

    ``locations`` gives each export's {country_code, subdivision_name} (from its spec: noriba.exports.export_locations).
    """
    import fcntl

    base_url = os.environ.get("NORIBA_BASE_URL", "") if base_url is None else base_url
    ws.exports.mkdir(parents=True, exist_ok=True)
    with open(ws.exports / ".site.lock", "w") as lock:  # two exports finishing together rebuild the site in turn
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_site(ws, base_url, locations or {}, today)


def _build_site(ws: Workspace, base_url: str, locations: dict, today: date | None) -> Path:
    data = collect(ws, today=today)
    copy = ws.remote is not None
    for f in data["feeds"]:  # a stable URL per feed and export: <folder>/latest.zip is the current version's file
        if f["zip"]:
            _link_latest(f["zip"], f["zip"].parent / LATEST, copy=copy)
    for x in data["exports"]:
        g = (x["manifest"].get("files") or {}).get("gtfs")
        if g:
            _link_latest(x["dir"] / g["path"], x["dir"].parent / LATEST, copy=copy)
    site = ws.exports / SITE
    tmp = ws.exports / f".{SITE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "feeds").mkdir(parents=True)
    (tmp / "exports").mkdir(parents=True)
    for f in data["feeds"]:
        # the validation report written with each version (reports/<feed>/<version>/report.html), published beside the page
        report = ws.reports / f["feed_id"] / f["feed_version"] / "report.html"
        if report.exists():
            shutil.copy(report, tmp / "feeds" / f"{f['feed_id']}.report.html")
            f["report"] = f"{f['feed_id']}.report.html"
        (tmp / "feeds" / f"{f['feed_id']}.html").write_text(_feed_page(ws, f, data["reports"]), encoding="utf-8")
    for x in data["exports"]:
        (tmp / "exports" / f"{x['manifest']['export_id']}.html").write_text(_export_page(ws, x), encoding="utf-8")
    (tmp / "index.html").write_text(_index(ws, data), encoding="utf-8")
    (tmp / "catalog.json").write_text(json.dumps(catalog_json(ws, data, base_url=base_url, locations=locations), ensure_ascii=False, indent=1), encoding="utf-8")
    (tmp / "files.json").write_text(json.dumps({"code": 200, "message": "ok", "body": files_listing(ws, data, base_url=base_url, locations=locations)},
                                               ensure_ascii=False, indent=1), encoding="utf-8")
    old = ws.exports / f".{SITE}.old"
    shutil.rmtree(old, ignore_errors=True)
    if site.exists():
        site.rename(old)
    tmp.rename(site)
    shutil.rmtree(old, ignore_errors=True)
    return site / "index.html"


# GTFS-Flex (issue 16): the catalog says which feeds describe demand-responsive service and how much of it
#: Flex tables counted, with their Japanese / English labels.
FLEX_TABLES = {"locations": ("運行区域", "zones"), "location_groups": ("停留所グループ", "stop groups"),
               "booking_rules": ("予約ルール", "booking rules")}


def flex_counts(ws: Workspace, feed_id: str, feed_version: str) -> dict[str, int]:
    """Return {Flex table: rows} of a version in the lake, only the tables with rows (empty when the feed has no Flex)."""
    import pyarrow.parquet as pq

    out = {}
    for t in FLEX_TABLES:
        part = ws.lake_partition(f"gtfs_{t}", feed_id, feed_version) / "part-0.parquet"
        if part.exists() and (n := pq.ParquetFile(part).metadata.num_rows):
            out[t] = n
    return out


def flex_html(counts: dict[str, int]) -> str:
    return " · ".join(f"{label(*FLEX_TABLES[t])} {n:,}" for t, n in counts.items())
