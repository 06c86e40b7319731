"""Rules on the pathway graph of stations (pathways.txt over stops.txt), as MobilityData v8.0.1 checks them.

Reachability is one recursive query per direction: from every entrance along the pathways
(bidirectional ones both ways), and back from every location to an entrance.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, WARNING, Context, Rule

#: (stop_id, station): the station that includes each location, walking up at most two parents
#: (boarding area -> platform -> station).
_STATION = (
    "(SELECT s.stop_id, CASE WHEN s.location_type = 1 THEN s.stop_id WHEN p.location_type = 1 THEN p.stop_id "
    "WHEN g.location_type = 1 THEN g.stop_id END AS station FROM stops s "
    "LEFT JOIN stops p ON p.stop_id = s.parent_station LEFT JOIN stops g ON g.stop_id = p.parent_station)"
)


def _platform_with_boarding_areas(ctx: Context) -> str:
    parts = []
    for side in ("from", "to"):
        parts.append(
            f"SELECT 'pathways.txt' AS file, w._line AS line, '{side}_stop_id' AS field, w.{side}_stop_id AS value, "
            f"'pathway ' || w.pathway_id || ' ends at platform ' || w.{side}_stop_id || coalesce(' (' || s.stop_name || ')', '') || "
            "', which has boarding areas; link its boarding areas instead' AS message "
            f"FROM pathways w JOIN stops s ON s.stop_id = w.{side}_stop_id WHERE coalesce(s.location_type, 0) = 0 "
            "AND EXISTS (SELECT 1 FROM stops b WHERE b.parent_station = s.stop_id AND b.location_type = 4)"
        )
    return " UNION ALL ".join(parts)


def _reach(forward: bool) -> str:
    """Return a recursive subquery of stop_ids reachable from an entrance (forward) or that reach one (not forward)."""
    a, b = ("from_stop_id", "to_stop_id") if forward else ("to_stop_id", "from_stop_id")
    return (
        "(WITH RECURSIVE e(src, dst) AS ("
        f"SELECT {a}, {b} FROM pathways UNION SELECT {b}, {a} FROM pathways WHERE is_bidirectional = 1), "
        "r(stop_id) AS (SELECT stop_id FROM stops WHERE location_type = 2 "
        "UNION SELECT e.dst FROM r JOIN e ON e.src = r.stop_id) SELECT stop_id FROM r)"
    )


def _unreachable(ctx: Context) -> str:
    return (
        f"WITH st AS {_STATION}, ends AS (SELECT from_stop_id AS stop_id FROM pathways UNION SELECT to_stop_id FROM pathways), "
        "stations AS (SELECT DISTINCT st.station FROM ends JOIN st USING (stop_id) WHERE st.station IS NOT NULL), "
        f"fwd AS {_reach(True)}, back AS {_reach(False)}, "
        "loc AS (SELECT s.*, s.stop_id IN (SELECT stop_id FROM fwd) AS has_entrance, s.stop_id IN (SELECT stop_id FROM back) AS has_exit "
        "FROM stops s JOIN st USING (stop_id) WHERE st.station IN (SELECT station FROM stations) "
        "AND (s.location_type IN (3, 4) OR (coalesce(s.location_type, 0) = 0 "
        "AND NOT EXISTS (SELECT 1 FROM stops c WHERE c.parent_station = s.stop_id))))"
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, stop_id AS value, "
        "'stop_id ' || stop_id || coalesce(' (' || stop_name || ')', '') || ' cannot be ' || "
        "CASE WHEN NOT has_entrance AND NOT has_exit THEN 'reached from an entrance nor left to an exit' "
        "WHEN NOT has_entrance THEN 'reached from any entrance' ELSE 'left to any exit' END || ' along the pathways' AS message "
        "FROM loc WHERE NOT (has_entrance AND has_exit)"
    )


def _dangling_generic_node(ctx: Context) -> str:
    return (
        "WITH inc AS (SELECT from_stop_id AS node, to_stop_id AS other FROM pathways "
        "UNION SELECT to_stop_id, from_stop_id FROM pathways) "
        "SELECT 'stops.txt' AS file, s._line AS line, 'stop_id' AS field, s.stop_id AS value, "
        "'generic node ' || s.stop_id || coalesce(' (' || s.stop_name || ')', '') || ' is linked to one location only (' || "
        "any_value(i.other) || ')' AS message "
        "FROM stops s JOIN inc i ON i.node = s.stop_id WHERE s.location_type = 3 "
        "GROUP BY s._line, s.stop_id, s.stop_name HAVING count(DISTINCT i.other) = 1"
    )


RULES: list[Rule] = [
    Rule("pathway_to_platform_with_boarding_areas", ERROR,
         "A pathway ends at a platform that has boarding areas; such a platform is an area, and pathways go to its boarding areas.",
         ("file", "line", "from_stop_id", "to_stop_id"), _platform_with_boarding_areas, needs=("pathways", "stops"),
         fix="Link the pathway to one of the platform's boarding areas (location_type 4).",
         why_ja="通路 (pathways.txt) が乗車位置 (boarding area) を持つのりばにつながっています。そののりばは面として扱われ、通路は乗車位置につなぎます。",
         fix_ja="通路をそののりばの乗車位置 (location_type 4) につないでください。"),
    Rule("pathway_unreachable_location", ERROR,
         "In a station with pathways, a platform, boarding area or node cannot be reached from an entrance, or cannot reach an exit.",
         ("file", "line", "stop_id"), _unreachable, needs=("pathways", "stops"),
         fix="Add the missing pathways (or make one bidirectional) so that every location connects to an entrance both ways.",
         why_ja="通路のある駅で、のりば・乗車位置・結節点のいずれかに出入口から行けないか、出入口へ戻れません。",
         fix_ja="不足している通路を追加する（または双方向にする）ことで、すべての場所が出入口と行き来できるようにしてください。"),
    Rule("pathway_dangling_generic_node", WARNING,
         "A generic node (location_type 3) is linked by pathways to one location only, so visiting it leads nowhere.",
         ("file", "line", "stop_id"), _dangling_generic_node, needs=("pathways", "stops"),
         fix="Link the node to a second location, or remove it and its pathway.",
         why_ja="結節点 (location_type 3) が通路で一つの場所としかつながっておらず、経由する意味がありません。",
         fix_ja="結節点をもう一つの場所につなぐか、結節点とその通路を削除してください。"),
]


def _stop_access(*, platform: bool):
    """Return the SQL of stop_access on a location it is forbidden for: a platform with no parent station, or not a stop."""
    where = "coalesce(location_type, 0) = 0 AND parent_station IS NULL" if platform else "coalesce(location_type, 0) <> 0"
    why = "' but no parent_station'" if platform else "' but location_type ' || location_type"

    def sql(ctx: Context) -> str:
        return ("SELECT 'stops.txt' AS file, _line AS line, 'stop_access' AS field, CAST(stop_access AS VARCHAR) AS value, "
                "'stop_id ' || stop_id || coalesce(' (' || stop_name || ')', '') || ' has stop_access ' || stop_access || "
                f"{why} AS message FROM stops WHERE stop_access IS NOT NULL AND stop_access <> 0 AND {where}")
    return sql


def _pathway_to_street_stop(ctx: Context) -> str:
    return (
        "WITH ext AS (SELECT stop_id, stop_name FROM stops WHERE stop_access = 1), "
        "ends AS (SELECT w._line, w.pathway_id, e.side, e.stop_id FROM pathways w, "
        "LATERAL (VALUES ('from_stop_id', w.from_stop_id), ('to_stop_id', w.to_stop_id)) e(side, stop_id)) "
        "SELECT 'pathways.txt' AS file, ends._line AS line, ends.side AS field, ends.stop_id AS value, "
        "'pathway ' || ends.pathway_id || ' links ' || ends.stop_id || coalesce(' (' || ext.stop_name || ')', '') || "
        "', which has stop_access 1 (reached from the street, outside the station''s pathways)' AS message "
        "FROM ends JOIN ext USING (stop_id) "
        "QUALIFY row_number() OVER (PARTITION BY ends._line, ends.stop_id ORDER BY ends.side) = 1"
    )


RULES += [
    Rule("stop_access_specified_for_stop_with_no_parent_station", ERROR,
         "stops.stop_access says how a platform of a station is reached; it is forbidden on a stop with no parent_station.",
         ("file", "line", "stop_id", "stop_access"), _stop_access(platform=True), needs=("stops",),
         fix="Leave stop_access empty for this stop, or give it the parent_station it belongs to.",
         why_ja="stops.stop_access は駅に属するのりばへの行き方を表す項目で、parent_station のない停留所には指定できません。",
         fix_ja="この停留所の stop_access を空にするか、所属する駅を parent_station に指定してください。"),
    Rule("stop_access_specified_for_incorrect_location", ERROR,
         "stops.stop_access is only for stops and platforms (location_type 0); stations, entrances, nodes and boarding areas must leave it empty.",
         ("file", "line", "stop_id", "stop_access", "location_type"), _stop_access(platform=False), needs=("stops",),
         fix="Leave stop_access empty on this location; set it on the platforms of the station instead.",
         why_ja="stops.stop_access は停留所・のりば (location_type 0) にだけ指定できます。駅・出入口・結節点・乗車位置では空にします。",
         fix_ja="この場所の stop_access を空にし、必要なら駅ののりばに指定してください。"),
    Rule("pathway_to_stop_with_access_outside_of_station_pathways", ERROR,
         "A pathway links a stop whose stop_access is 1 (reached directly from the street), which is outside the station's pathways.",
         ("file", "line", "pathway_id", "stop_id"), _pathway_to_street_stop, needs=("pathways", "stops"),
         fix="Remove the pathway, or set the stop's stop_access to 0 if it is really reached through the station.",
         why_ja="stop_access が 1（道路から直接行ける）の停留所に通路 (pathways.txt) がつながっています。その停留所は駅の通路網の外です。",
         fix_ja="その通路を削除するか、駅の中を通って行く停留所なら stop_access を 0 にしてください。"),
]
