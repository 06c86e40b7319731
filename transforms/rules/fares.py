"""Rules on fares (GTFS fares v1: fare_attributes.txt and fare_rules.txt).

Broken references (an unknown fare_id, route_id or zone in fare_rules.txt) are reported while
the feed is typed (foreign_key_violation); negative prices and unknown currencies by the format
rules; stops without zone_id under zone fares by the stops rules (stop_without_zone_id). These
rules check that the two files fit together and that every route and journey has a fare.
"""

from __future__ import annotations

from transforms.rules.engine import INFO, WARNING, Context, Rule


def _fare_without_rules(ctx: Context) -> str:
    return (
        "SELECT 'fare_attributes.txt' AS file, _line AS line, 'fare_id' AS field, fare_id AS value, "
        "'fare_id ' || fare_id || ' (' || CAST(price AS VARCHAR) || ' ' || coalesce(currency_type, '') || ') is used by no row of fare_rules.txt, "
        "so it is unclear which trips it applies to' AS message "
        "FROM fare_attributes WHERE EXISTS (SELECT 1 FROM fare_rules) AND fare_id NOT IN (SELECT fare_id FROM fare_rules WHERE fare_id IS NOT NULL)"
    )


KEY = ("route_id", "origin_id", "destination_id", "contains_id")


def _describe(prefix: str = "") -> str:
    return " || ', ' || ".join(f"'{k}=' || coalesce({prefix}{k}, '(any)')" for k in KEY)


def _duplicate_fare_rule(ctx: Context) -> str:
    part = ", ".join(("fare_id",) + KEY)
    return (
        "SELECT 'fare_rules.txt' AS file, _line AS line, 'fare_id' AS field, fare_id AS value, "
        f"'fare_id ' || fare_id || ' with ' || {_describe()} || ' repeats line ' || first_line AS message "
        f"FROM (SELECT *, min(_line) OVER (PARTITION BY {part}) AS first_line FROM fare_rules) WHERE _line > first_line"
    )


def _conflicting_fare_rules(ctx: Context) -> str:
    keys = ", ".join(f"r.{k}" for k in KEY)
    return (
        "SELECT 'fare_rules.txt' AS file, min(r._line) AS line, 'fare_id' AS field, string_agg(DISTINCT r.fare_id, ', ' ORDER BY r.fare_id) AS value, "
        "'fares ' || string_agg(DISTINCT r.fare_id || ' (' || CAST(a.price AS VARCHAR) || ')', ', ' ORDER BY r.fare_id || ' (' || CAST(a.price AS VARCHAR) || ')') || ' all apply to ' || "
        f"{_describe('r.')} || ' with the same payment_method, at different prices' AS message "
        "FROM fare_rules r JOIN fare_attributes a USING (fare_id) "
        f"GROUP BY {keys}, a.payment_method, a.currency_type HAVING count(DISTINCT a.price) > 1"
    )


def _route_without_fare(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_id' AS field, route_id AS value, "
        "'route_id ' || route_id || coalesce(' (' || coalesce(route_short_name, route_long_name) || ')', '') || "
        "' has trips but no row of fare_rules.txt names it, and every fare rule is limited to named routes, so it has no fare' AS message "
        "FROM routes WHERE route_id IN (SELECT route_id FROM trips) "
        "AND EXISTS (SELECT 1 FROM fare_rules) AND NOT EXISTS (SELECT 1 FROM fare_rules WHERE route_id IS NULL) "
        "AND route_id NOT IN (SELECT route_id FROM fare_rules WHERE route_id IS NOT NULL)"
    )


def _journey_without_fare(ctx: Context) -> str:
    """Every (route, boarding zone, alighting zone) a trip offers needs a matching fare rule, when fares go by zone.

    A rule matches when each of its route_id, origin_id and destination_id is empty or equal; the
    eight combinations of empty fields are eight hash joins, not one join on an OR condition.
    """
    cols = (("route_id", "route_id"), ("origin_id", "o"), ("destination_id", "d"))
    covered = []
    for mask in range(8):
        on = " AND ".join(f"r.{c} IS NULL" if mask & (1 << i) else f"r.{c} = p.{pc}" for i, (c, pc) in enumerate(cols))
        covered.append(f"SELECT p.route_id, p.o, p.d FROM pairs p JOIN fare_rules r ON {on}")
    return (
        "WITH patterns AS (SELECT DISTINCT route_id, zones FROM (SELECT t.route_id, list(s.zone_id ORDER BY st.stop_sequence) AS zones "
        "FROM stop_times st JOIN trips t USING (trip_id) JOIN stops s USING (stop_id) GROUP BY t.route_id, st.trip_id)), "
        # A pattern runs from zone o to zone d (some o before some d) when o's first position is before d's last: each
        # zone's first and last position, then pairs of zones, not pairs of positions (one trip through a million stops
        # in two zones: four pairs, not 5*10^11).
        "pz AS (SELECT route_id, pid, z, min(i) AS f, max(i) AS l FROM (SELECT route_id, pid, unnest(zones) AS z, "
        "unnest(range(1, len(zones) + 1)) AS i FROM (SELECT *, row_number() OVER () AS pid FROM patterns)) WHERE z IS NOT NULL "
        "GROUP BY route_id, pid, z), "
        "pairs AS (SELECT DISTINCT a.route_id, a.z AS o, b.z AS d FROM pz a JOIN pz b ON b.pid = a.pid AND b.route_id = a.route_id "
        "WHERE a.f < b.l AND a.z <> b.z "
        "AND EXISTS (SELECT 1 FROM fare_rules WHERE origin_id IS NOT NULL OR destination_id IS NOT NULL) "
        "AND NOT EXISTS (SELECT 1 FROM fare_rules WHERE contains_id IS NOT NULL) "
        # a route no rule names at all is route_without_fare, reported once
        "AND (a.route_id IN (SELECT route_id FROM fare_rules) OR EXISTS (SELECT 1 FROM fare_rules WHERE route_id IS NULL))), "
        f"missing AS (SELECT route_id, o, d FROM pairs EXCEPT ({' UNION '.join(covered)})) "
        "SELECT 'fare_rules.txt' AS file, NULL AS line, 'origin_id' AS field, o || ' -> ' || d AS value, "
        "'route_id ' || route_id || ': no fare rule applies from zone ' || o || ' to zone ' || d || ', though its trips run from one to the other' AS message "
        "FROM missing"
    )


def _rules_without_attributes(ctx: Context) -> str:
    if "fare_attributes" in ctx.present:
        return "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"
    return (
        "SELECT 'fare_rules.txt' AS file, NULL AS line, NULL AS field, NULL AS value, "
        "'fare_rules.txt has ' || count(*) || ' row(s) but fare_attributes.txt is missing, so no fare has a price' AS message "
        "FROM fare_rules HAVING count(*) > 0"
    )


def _transfer_duration_without_transfers(ctx: Context) -> str:
    return (
        "SELECT 'fare_attributes.txt' AS file, _line AS line, 'transfer_duration' AS field, CAST(transfer_duration AS VARCHAR) AS value, "
        "'fare_id ' || fare_id || ' has transfer_duration ' || transfer_duration || ' s but transfers is 0 (no transfer allowed)' AS message "
        "FROM fare_attributes WHERE transfers = 0 AND transfer_duration > 0"
    )


RULES: list[Rule] = [
    Rule("fare_without_rules", WARNING, "A fare in fare_attributes.txt is used by no row of fare_rules.txt, so no trip is known to cost that fare.",
         ("file", "line", "fare_id"), _fare_without_rules, needs=("fare_attributes", "fare_rules"),
         fix="Add fare_rules.txt rows (route, origin and destination zones) for the fare, or delete it.",
         why_ja="fare_attributes.txt の運賃が fare_rules.txt のどの行でも使われておらず、どの区間の運賃か分かりません。",
         fix_ja="その運賃を使う区間（路線・乗車停留所・降車停留所のゾーン）を fare_rules.txt に追加するか、不要なら削除してください。"),
    Rule("duplicate_fare_rule", WARNING, "A fare_rules.txt row repeats an earlier row exactly.",
         ("file", "line", "fare_id"), _duplicate_fare_rule, needs=("fare_rules",),
         fix="Delete the repeated row.",
         why_ja="fare_rules.txt に、前の行とまったく同じ行があります。",
         fix_ja="重複している行を削除してください。"),
    Rule("conflicting_fare_rules", WARNING, "Two fares with different prices and the same payment method apply to the same route and zones.",
         ("file", "line", "fare_id"), _conflicting_fare_rules, needs=("fare_rules", "fare_attributes"),
         fix="Keep one fare for the route and zones, or correct the zones of one of the rules.",
         why_ja="同じ路線・区間・支払方法に、金額の異なる二つの運賃が設定されています。",
         fix_ja="その区間の運賃を一つにするか、どちらかの行のゾーンを直してください。"),
    Rule("route_without_fare", WARNING, "A route with trips is named by no fare rule while every fare rule is limited to named routes, so it has no fare.",
         ("file", "line", "route_id"), _route_without_fare, needs=("fare_rules",),
         fix="Add fare_rules.txt rows for the route.",
         why_ja="運賃ルールがすべて路線を指定しているのに、この路線（便あり）を指定したルールがなく、運賃が決まりません。",
         fix_ja="この路線の運賃ルールを fare_rules.txt に追加してください。"),
    Rule("journey_without_fare", WARNING, "Fares go by zone, but no fare rule applies to a journey a trip offers (a route from one zone to a later one).",
         ("file", "route_id", "origin_id", "destination_id"), _journey_without_fare, needs=("fare_rules", "stop_times"),
         fix="Add a fare_rules.txt row for the route, origin zone and destination zone (or one without route_id that covers it).",
         why_ja="運賃がゾーン（停留所）間で決められていますが、便が実際に運行する乗車・降車の組み合わせに当てはまる運賃がありません。",
         fix_ja="その路線・乗車ゾーン・降車ゾーンの運賃を fare_rules.txt に追加してください。"),
    Rule("fare_rules_without_fare_attributes", WARNING, "fare_rules.txt has rows but fare_attributes.txt is missing, so no fare has a price.",
         ("file",), _rules_without_attributes, needs=("fare_rules",),
         fix="Add fare_attributes.txt with the price of each fare_id.",
         why_ja="fare_rules.txt はあるのに fare_attributes.txt がなく、運賃の金額が分かりません。",
         fix_ja="各 fare_id の金額を書いた fare_attributes.txt を追加してください。"),
    Rule("transfer_duration_without_transfers", INFO, "A fare allows no transfer (transfers 0) but gives a transfer_duration.",
         ("file", "line", "fare_id"), _transfer_duration_without_transfers, needs=("fare_attributes",),
         fix="Set transfers to the number of transfers allowed, or leave transfer_duration empty.",
         why_ja="乗継不可 (transfers=0) の運賃に乗継有効時間 (transfer_duration) が書かれています。",
         fix_ja="乗継回数を transfers に正しく書くか、transfer_duration を空欄にしてください。"),
]
