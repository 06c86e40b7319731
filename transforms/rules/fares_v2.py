"""Rules on GTFS Fares v2 (fare_media, fare_products, rider_categories, fare_transfer_rules), as MobilityData v8.0.1 checks them."""

from __future__ import annotations

from transforms.rules.engine import ERROR, WARNING, Context, Rule

_FTR = "SELECT 'fare_transfer_rules.txt' AS file, _line AS line, "
#: A transfer within one leg group (both ids given and equal), where transfer_count is required, else forbidden.
_SAME_GROUP = "(from_leg_group_id IS NOT NULL AND to_leg_group_id IS NOT NULL AND from_leg_group_id = to_leg_group_id)"


def _duration_type_without_limit(ctx: Context) -> str:
    return (_FTR + "'duration_limit' AS field, CAST(duration_limit_type AS VARCHAR) AS value, "
            "'duration_limit_type ' || duration_limit_type || ' is given but duration_limit is empty' AS message "
            "FROM fare_transfer_rules WHERE duration_limit_type IS NOT NULL AND duration_limit IS NULL")


def _duration_limit_without_type(ctx: Context) -> str:
    return (_FTR + "'duration_limit_type' AS field, CAST(duration_limit AS VARCHAR) AS value, "
            "'duration_limit ' || duration_limit || ' is given but duration_limit_type is empty' AS message "
            "FROM fare_transfer_rules WHERE duration_limit IS NOT NULL AND duration_limit_type IS NULL")


def _invalid_transfer_count(ctx: Context) -> str:
    # MobilityData: within one leg group, transfer_count must be -1 (no limit) or at least 1.
    return (_FTR + "'transfer_count' AS field, CAST(transfer_count AS VARCHAR) AS value, "
            "'transfer_count ' || transfer_count || ' is neither -1 (no limit) nor a number of transfers of 1 or more' AS message "
            f"FROM fare_transfer_rules WHERE {_SAME_GROUP} AND transfer_count IS NOT NULL AND (transfer_count < -1 OR transfer_count = 0)")


def _forbidden_transfer_count(ctx: Context) -> str:
    return (_FTR + "'transfer_count' AS field, CAST(transfer_count AS VARCHAR) AS value, "
            "'transfer_count is given but from_leg_group_id ' || coalesce(from_leg_group_id, '(empty)') || "
            "' and to_leg_group_id ' || coalesce(to_leg_group_id, '(empty)') || ' are not the same leg group' AS message "
            f"FROM fare_transfer_rules WHERE transfer_count IS NOT NULL AND NOT {_SAME_GROUP}")


def _without_transfer_count(ctx: Context) -> str:
    return (_FTR + "'transfer_count' AS field, from_leg_group_id AS value, "
            "'from_leg_group_id and to_leg_group_id are both ' || from_leg_group_id || ' but transfer_count is empty' AS message "
            f"FROM fare_transfer_rules WHERE transfer_count IS NULL AND {_SAME_GROUP}")


def _multiple_default_rider_categories(ctx: Context) -> str:
    return (
        "WITH d AS (SELECT p.fare_product_id, p._line AS line, p.rider_category_id FROM fare_products p "
        "JOIN rider_categories r USING (rider_category_id) WHERE r.is_default_fare_category = 1), "
        # Each row b with the first earlier row a of another category: the product's first row when b's category is not
        # its, else the first row of another category than the first's (if earlier than b); not every pair of rows.
        "f AS (SELECT fare_product_id, arg_min(rider_category_id, line) AS c0 FROM d GROUP BY fare_product_id), "
        "g AS (SELECT d.fare_product_id, arg_min(d.rider_category_id, d.line) AS c, min(d.line) AS l FROM d JOIN f USING (fare_product_id) "
        "WHERE d.rider_category_id <> f.c0 GROUP BY d.fare_product_id), "
        "pairs AS (SELECT b.fare_product_id, CASE WHEN b.rider_category_id <> f.c0 THEN f.c0 ELSE g.c END AS c1, "
        "b.rider_category_id AS c2, b.line FROM d b JOIN f USING (fare_product_id) LEFT JOIN g USING (fare_product_id) "
        "WHERE b.rider_category_id <> f.c0 OR g.l < b.line) "
        "SELECT 'fare_products.txt' AS file, line, 'rider_category_id' AS field, c2 AS value, "
        "'fare_product_id ' || fare_product_id || ' has two default rider categories: ' || c1 || ' and ' || c2 AS message "
        "FROM pairs"
    )


def _duplicate_fare_media(ctx: Context) -> str:
    # each row with the first row of the same name and type before it (a window, not every pair of alike rows)
    return (
        "SELECT 'fare_media.txt' AS file, _line AS line, 'fare_media_id' AS field, fare_media_id AS value, "
        "'fare_media_id ' || fare_media_id || ' has the same name and type as fare_media_id ' || a_id || "
        "' (line ' || a_line || ')' AS message "
        "FROM (SELECT _line, fare_media_id, first_value(_line) OVER w AS a_line, first_value(fare_media_id) OVER w AS a_id FROM fare_media "
        "WINDOW w AS (PARTITION BY fare_media_name, fare_media_type ORDER BY _line)) WHERE _line > a_line"
    )


RULES: list[Rule] = [
    Rule("fare_transfer_rule_duration_limit_type_without_duration_limit", ERROR,
         "A fare transfer rule says how its time limit is measured (duration_limit_type) but gives no duration_limit.",
         ("file", "line", "duration_limit_type"), _duration_type_without_limit, needs=("fare_transfer_rules",),
         fix="Give duration_limit (seconds), or leave duration_limit_type empty.",
         why_ja="運賃乗継ルール (fare_transfer_rules.txt) に制限時間の測り方 (duration_limit_type) があるのに、制限時間 (duration_limit) がありません。",
         fix_ja="duration_limit（秒）を入力するか、duration_limit_type を空欄にしてください。"),
    Rule("fare_transfer_rule_duration_limit_without_type", ERROR,
         "A fare transfer rule has a duration_limit but not how it is measured (duration_limit_type).",
         ("file", "line", "duration_limit"), _duration_limit_without_type, needs=("fare_transfer_rules",),
         fix="Give duration_limit_type (0-3), or leave duration_limit empty.",
         why_ja="運賃乗継ルールに制限時間 (duration_limit) があるのに、その測り方 (duration_limit_type) がありません。",
         fix_ja="duration_limit_type（0〜3）を入力するか、duration_limit を空欄にしてください。"),
    Rule("fare_transfer_rule_invalid_transfer_count", ERROR,
         "transfer_count is neither -1 (no limit) nor 1 or more.",
         ("file", "line", "transfer_count"), _invalid_transfer_count, needs=("fare_transfer_rules",),
         fix="Use -1 for unlimited transfers, or the number of transfers allowed (1 or more).",
         why_ja="乗継回数 (transfer_count) が -1（無制限）でも 1 以上でもありません。",
         fix_ja="無制限なら -1、そうでなければ認める乗継回数（1 以上）を入力してください。"),
    Rule("fare_transfer_rule_with_forbidden_transfer_count", ERROR,
         "transfer_count is given although from_leg_group_id and to_leg_group_id differ; it is only for transfers within one leg group.",
         ("file", "line", "transfer_count"), _forbidden_transfer_count, needs=("fare_transfer_rules",),
         fix="Leave transfer_count empty for transfers between different leg groups.",
         why_ja="乗継元と乗継先の区間グループ (leg_group_id) が異なるのに乗継回数 (transfer_count) が入っています。乗継回数は同じ区間グループ内の乗継にだけ指定します。",
         fix_ja="異なる区間グループ間の乗継では transfer_count を空欄にしてください。"),
    Rule("fare_transfer_rule_without_transfer_count", ERROR,
         "from_leg_group_id equals to_leg_group_id but transfer_count is empty; it is required for transfers within one leg group.",
         ("file", "line", "transfer_count"), _without_transfer_count, needs=("fare_transfer_rules",),
         fix="Give transfer_count (-1 for no limit).",
         why_ja="乗継元と乗継先の区間グループが同じなのに乗継回数 (transfer_count) がありません。この場合は必須です。",
         fix_ja="transfer_count を入力してください（無制限なら -1）。"),
    Rule("fare_product_with_multiple_default_rider_categories", ERROR,
         "A fare product is offered to more than one rider category marked as the default (is_default_fare_category = 1).",
         ("file", "line", "fare_product_id", "rider_category_id"), _multiple_default_rider_categories,
         needs=("fare_products", "rider_categories"),
         fix="Mark at most one of the product's rider categories as the default.",
         why_ja="一つの運賃商品 (fare_product_id) に、既定 (is_default_fare_category = 1) の利用者区分が二つ以上あります。",
         fix_ja="その運賃商品の利用者区分のうち既定は一つだけにしてください。"),
    Rule("duplicate_fare_media", WARNING,
         "Two fare media have the same name and type, so riders cannot tell them apart.",
         ("file", "line", "fare_media_id"), _duplicate_fare_media, needs=("fare_media",),
         fix="Merge the two fare media, or give them distinct names.",
         why_ja="二つの運賃媒体 (fare_media.txt) の名称と種別が同じで、利用者が区別できません。",
         fix_ja="二つを一つにまとめるか、異なる名称を付けてください。"),
]
