"""GBFS rules: the official JSON schema of each file's declared version, and the rules across files.

Schema checks use MobilityData's schemas (``schemas/v<version>/<file>.json``, see schemas/README.md)
with the ``jsonschema`` library; each error becomes one ``schema_error`` notice with the file and
the JSON path of the field. A document is first given to ``jsonschema-rs`` (the same draft-07
schema, formats unchecked as in ``jsonschema``): when it finds no error, which is most snapshots,
``jsonschema`` is not run (0.15 ms instead of ~3-5 ms a Boulder snapshot). MobilityData's gbfs-validator names no rule beyond schema errors and
missing files; Entur's gbfs-validator-java does: ``NoInvalidReferenceToVehicleTypesInStationStatus``
is ``invalid_reference_to_vehicle_types_in_station_status`` here, and the invalid half of
``NoMissingOrInvalidVehicleTypeIdInVehicleStatusWhenVehicleTypesExist`` is
``invalid_reference_to_vehicle_types_in_vehicle_status``. The other codes are Noriba's own.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from transforms.notices import ERROR, INFO, WARNING, Notice
from transforms.rules.engine import Rule

SCHEMAS = Path(__file__).with_name("schemas")
#: A file kind whose schema is named otherwise in a version (vehicle_status is free_bike_status before 3.0).
_SCHEMA_NAME = {"vehicle_status": "vehicle_status", "free_bike_status": "free_bike_status"}
#: Keys whose values identify a vehicle (GBFS asks them to rotate): never quoted in a notice.
_SECRET_KEYS = ("bike_id", "vehicle_id", "rental_uris")
#: At most this many schema errors are kept per file (the count of the rest is in the last message).
MAX_ERRORS_PER_FILE = 20


def _r(code: str, severity: str, why: str, why_ja: str, fix_ja: str, fields: tuple[str, ...] = ()) -> Rule:
    return Rule(code, severity, why, fields, stage="read", why_ja=why_ja, fix_ja=fix_ja)


RULES: list[Rule] = [
    _r("invalid_json", ERROR, "The file is not JSON (or not UTF-8): none of it can be read; it counts as one quarantined record.",
       "ファイルが JSON として読めません（または UTF-8 ではありません）。中身を一切取り込めません。",
       "配信元に JSON の形式を確認してもらい、正しいファイルを取得し直してください。"),
    _r("unknown_gbfs_file", INFO, "A JSON file whose name and contents match no GBFS file; it is archived but not read.",
       "GBFS のどのファイルにも当てはまらない JSON ファイルです。保存はしますが取り込みません。",
       "ファイル名に station_status などの GBFS ファイル名を含めるか、不要なら取り除いてください。"),
    _r("schema_error", ERROR, "The official GBFS JSON schema of the file's version rejects a field (missing, wrong type or out of range).",
       "宣言された GBFS バージョンの公式 JSON スキーマに合わない項目があります（必須項目の欠落、型や値の範囲の誤り）。",
       "指摘された項目を GBFS 仕様どおりに直すよう配信元に依頼してください。", ("field",)),
    _r("no_schema_for_version", INFO, "No official schema for this file and version is bundled, so only Noriba's own checks ran on it.",
       "このファイルとバージョンの公式スキーマを同梱していないため、Noriba 独自の検査のみ行いました。",
       "対応するスキーマを transforms/gbfs/schemas に追加すると検査されます。"),
    _r("missing_version", WARNING, "The file declares no `version` (required since GBFS 1.1); the spec's gbfs.version or gbfs.json's is assumed.",
       "ファイルに version がありません（GBFS 1.1 以降は必須）。スペックの gbfs.version か gbfs.json の版とみなしました。",
       "配信元に version の記載を依頼し、それまではスペックに gbfs.version を書いてください。", ("version",)),
    _r("version_mismatch", INFO, "Files of one system declare different GBFS versions (common in real systems); each is checked against its own version.",
       "同じシステムのファイル間で GBFS バージョンが異なります（実際によくあります）。各ファイルはそれぞれの版で検査しました。",
       "可能なら全ファイルを同じ版にそろえるよう配信元に伝えてください。", ("version",)),
    _r("invalid_last_updated", ERROR, "The file's last_updated is missing or not a time, so its snapshot cannot be placed in time; its rows are quarantined.",
       "last_updated がないか時刻として読めないため、いつの状態か分かりません。その行は隔離しました。",
       "last_updated に POSIX 時刻（3.0 は RFC 3339）を入れるよう配信元に依頼してください。", ("last_updated",)),
    _r("invalid_station_status", ERROR, "A station status without station_id or with an unusable num_bikes_available; the row is quarantined.",
       "station_id がないか num_bikes_available が使えない駅の状態です。その行は隔離しました。",
       "station_id と 0 以上の整数の num_bikes_available を必ず入れるよう配信元に依頼してください。", ("station_id", "num_bikes_available")),
    _r("invalid_station_information", ERROR, "A station without station_id or coordinates; the row is quarantined.",
       "station_id または緯度経度のない駅です。その行は隔離しました。",
       "すべての駅に station_id と lat/lon を入れるよう配信元に依頼してください。", ("station_id", "lat", "lon")),
    _r("invalid_vehicle_status", ERROR, "A vehicle with neither coordinates nor a station_id; the row is quarantined (without its vehicle id).",
       "緯度経度も station_id もない車両です。その行は隔離しました（車両 ID は保存しません）。",
       "車両ごとに lat/lon か station_id を入れるよう配信元に依頼してください。", ("lat", "lon", "station_id")),
    _r("duplicate_vehicle_id", WARNING, "The same vehicle id appears twice in one snapshot, so availability counts it twice.",
       "一つのスナップショットに同じ車両 ID が二度あり、利用可能台数が二重に数えられます。",
       "車両 ID を一意にするよう配信元に依頼してください。", ("bike_id",)),
    _r("vehicle_id_not_rotated", INFO, "A vehicle keeps its id after moving between snapshots; GBFS 2.0+ asks ids to rotate after each trip (privacy). Ids are never stored or exported.",
       "移動した車両の ID が変わっていません。GBFS 2.0 以降はプライバシー保護のため移動ごとに ID を変えることを求めています。ID は保存も出力もしません。",
       "トリップごとに車両 ID を変える（ローテーションする）よう配信元に依頼してください。", ("bike_id",)),
    _r("missing_system_information", WARNING, "No system_information.json: GBFS requires it in every version; the spec's time zone is used.",
       "system_information.json がありません。GBFS ではすべての版で必須です。スペックのタイムゾーンを使います。",
       "配信元が公開していれば、それも取得・保存してください。"),
    _r("missing_station_information", ERROR, "Station status without any station_information.json: stations have no names or places.",
       "station_status はありますが station_information.json がなく、駅の名前も位置も分かりません。",
       "station_information.json も取得・保存してください。"),
    _r("station_not_in_station_information", WARNING, "A station in station_status is not in station_information, so it has no name or place.",
       "station_status の駅が station_information にありません。駅名も位置も分かりません。",
       "station_information に当該駅を追加するよう配信元に依頼してください。", ("station_id",)),
    _r("invalid_reference_to_vehicle_types_in_station_status", WARNING,
       "vehicle_types_available names a vehicle_type_id that vehicle_types.json does not declare (or there is no vehicle_types.json).",
       "vehicle_types_available の vehicle_type_id が vehicle_types.json に定義されていません（または vehicle_types.json がありません）。",
       "vehicle_types.json に車両タイプを定義するよう配信元に依頼してください。", ("vehicle_type_id",)),
    _r("invalid_reference_to_vehicle_types_in_vehicle_status", WARNING,
       "A vehicle's vehicle_type_id is not declared in vehicle_types.json (or there is no vehicle_types.json).",
       "車両の vehicle_type_id が vehicle_types.json に定義されていません（または vehicle_types.json がありません）。",
       "vehicle_types.json に車両タイプを定義するよう配信元に依頼してください。", ("vehicle_type_id",)),
    _r("invalid_reference_to_station_in_vehicle_status", WARNING, "A vehicle's station_id is not a station of station_information.",
       "車両の station_id が station_information の駅にありません。",
       "station_id を正しい駅 ID にするよう配信元に依頼してください。", ("station_id",)),
]
BY_CODE = {r.code: r for r in RULES}


def notice(code: str, message: str, **where) -> Notice:
    """Return a notice of rule ``code`` (its severity from RULES)."""
    return Notice(code=code, severity=BY_CODE[code].severity, message=message, **where)


@lru_cache(maxsize=64)
def validator(version: str, kind: str):
    """Return the jsonschema validator of a file kind in a GBFS version, or None when no schema is bundled."""
    path = SCHEMAS / f"v{version}" / f"{_SCHEMA_NAME.get(kind, kind)}.json"
    if not path.is_file():
        return None
    import jsonschema

    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


@lru_cache(maxsize=64)
def fast_validator(version: str, kind: str):
    """Return a jsonschema-rs validator of the same schema (draft-07, formats not checked, as ``validator``'s), used to
    tell in microseconds that a document has no error; None when no schema is bundled or jsonschema-rs refuses it."""
    path = SCHEMAS / f"v{version}" / f"{_SCHEMA_NAME.get(kind, kind)}.json"
    if not path.is_file():
        return None
    import jsonschema_rs

    try:
        return jsonschema_rs.Draft7Validator(json.loads(path.read_text(encoding="utf-8")), validate_formats=False, offline=True)
    except (ValueError, jsonschema_rs.ReferencingError):
        return None


def _path(error) -> str:
    out = ""
    for p in error.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(file)"


def schema_notices(doc: object, *, kind: str, version: str, file: str) -> list[Notice]:
    """Return one ``schema_error`` notice per error the official schema finds (at most MAX_ERRORS_PER_FILE, then a count)."""
    v = validator(version, kind)
    if v is None:
        return [notice("no_schema_for_version", f"no bundled schema for {kind}.json of GBFS {version}; only Noriba's own checks ran",
                       file=file, value=version)]
    fast = fast_validator(version, kind)
    if fast is not None:
        try:
            if fast.is_valid(doc):  # no error: what jsonschema would find too, ~300x sooner
                return []
        except (ValueError, RecursionError):
            pass  # jsonschema says what is wrong
    out: list[Notice] = []
    n = 0
    try:
        errors = list(v.iter_errors(doc))
    except RecursionError:  # a hostile document nested deeper than the validator can walk
        return [notice("schema_error", f"GBFS {version} schema: the document is nested too deeply to check", file=file)]
    for err in errors:
        n += 1
        if n <= MAX_ERRORS_PER_FILE:
            # a vehicle's id (and the rental links that embed it) never leaves in a message: objects are not quoted either
            hidden = isinstance(err.instance, (dict, list)) or any(p in _SECRET_KEYS for p in err.absolute_path)
            msg = err.message.replace(repr(err.instance), "the value") if hidden else err.message
            msg = " ".join(msg.split())
            out.append(notice("schema_error", f"GBFS {version} schema: {msg[:300]}", file=file, field=_path(err),
                              value=None if hidden else str(err.instance)[:100]))
    if n > MAX_ERRORS_PER_FILE:
        out.append(notice("schema_error", f"GBFS {version} schema: {n - MAX_ERRORS_PER_FILE} more errors in this file", file=file))
    return out
