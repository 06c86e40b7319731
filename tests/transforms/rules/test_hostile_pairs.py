"""Rules that compare rows of one file with each other stay in proportion to the file on hostile input (every row alike):
the same findings as every pair of rows gives, without forming those pairs."""


from tests.transforms.rules._feed_b import DAY, feed, found, largest_operator_rows, rule, run, tables
from transforms.rules import engine, fares_v2

FP = "fare_product_id,fare_product_name,rider_category_id,amount,currency\n"
FM = "fare_media_id,fare_media_name,fare_media_type\n"

#: What the two rules were before: every pair of rows, the first earlier partner of each row kept (the reference).
PAIRS = {
    "fare_product_with_multiple_default_rider_categories": (
        "WITH d AS (SELECT p.fare_product_id, p._line AS line, p.rider_category_id FROM fare_products p "
        "JOIN rider_categories r USING (rider_category_id) WHERE r.is_default_fare_category = 1), "
        "pairs AS (SELECT a.fare_product_id, a.rider_category_id AS c1, b.rider_category_id AS c2, b.line, "
        "row_number() OVER (PARTITION BY a.fare_product_id, b.line ORDER BY a.line) AS k FROM d a JOIN d b "
        "ON a.fare_product_id = b.fare_product_id AND a.line < b.line AND a.rider_category_id <> b.rider_category_id) "
        "SELECT line, c2 AS value, 'fare_product_id ' || fare_product_id || ' has two default rider categories: ' || c1 || ' and ' || c2 AS message "
        "FROM pairs WHERE k = 1"),
    "duplicate_fare_media": (
        "SELECT b._line AS line, b.fare_media_id AS value, "
        "'fare_media_id ' || b.fare_media_id || ' has the same name and type as fare_media_id ' || a.fare_media_id || "
        "' (line ' || a._line || ')' AS message "
        "FROM fare_media a JOIN fare_media b ON a._line < b._line "
        "AND a.fare_media_name IS NOT DISTINCT FROM b.fare_media_name AND a.fare_media_type IS NOT DISTINCT FROM b.fare_media_type "
        "QUALIFY row_number() OVER (PARTITION BY b._line ORDER BY a._line) = 1"),
}


def _files(n: int) -> dict:
    cats = "rider_category_id,rider_category_name,is_default_fare_category\n" + "".join(
        f"C{k},区分{k},{0 if k % 4 == 3 else 1}\n" for k in range(6))
    products = FP + "".join(f"P{k % 3 if k % 5 else 9},運賃,C{(k * k + k // 7) % 6},{100 + k},JPY\n" for k in range(n))
    media = FM + "".join(f"M{k},{'' if k % 11 == 0 else 'カード' + str(k % 3)},{'' if k % 13 == 0 else k % 2 + 1}\n" for k in range(n))
    return feed(rider_categories=cats, fare_products=products, fare_media=media)



def test_alike_fare_rows_give_the_findings_of_every_pair_in_proportion_to_the_rows(tmp_path):
    n = 2000
    files = _files(n)
    out, _ = tables(tmp_path / "t", files)
    con, present = engine.open_tables(out)
    ctx = engine.Context(validation_date=DAY, profile="gtfs", present=present)
    for code, reference in PAIRS.items():
        picked = rule(fares_v2.RULES, code)
        got = found(run(tmp_path / code, files, picked), code)
        want = con.execute(reference).fetchall()
        assert len(want) > n // 2  # most rows are alike
        assert sorted((x["line"], x["value"], x["message"]) for x in got) == sorted(want)
        assert largest_operator_rows(con, picked[0].sql(ctx), tmp_path / f"{code}.json") <= 10 * n, code
