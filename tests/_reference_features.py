"""The feature spec as plain DuckDB SQL over the pandas tables: slow, short, checkable by reading.

Each query is one line of the spec in :func:`gpuseg.features.compute_features`.
DuckDB reads a NaN of a pandas float column as NULL, so ``avg`` and
``stddev_pop`` skip the missing ``days_since_prior_order`` values as the spec does.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from gpuseg.data.tables import InstacartData
from gpuseg.features import aisle_column, feature_columns

_SETUP = """
-- I: product rows of known products, with their order's user
CREATE TEMP TABLE item AS
SELECT o.user_id, op.order_id, op.product_id, op.reordered, p.aisle_id, p.department_id,
       coalesce(contains(lower(p.product_name), 'organic'), false) AS organic
FROM order_products op
JOIN products p ON p.product_id = op.product_id
JOIN orders o ON o.order_id = op.order_id;

-- H: orders with at least one item, numbered 1, 2, ... by order_number within each user
CREATE TEMP TABLE history AS
SELECT o.*, row_number() OVER (PARTITION BY o.user_id ORDER BY o.order_number) AS position
FROM orders o
WHERE o.order_id IN (SELECT order_id FROM item);

CREATE TEMP TABLE user_item AS
SELECT i.*, h.position FROM item i JOIN history h ON h.order_id = i.order_id;

CREATE TEMP TABLE n_items AS
SELECT user_id, count(*)::DOUBLE AS n FROM user_item GROUP BY user_id;
"""

_ORDER_FEATURES = """
SELECT user_id,
       count(*)::DOUBLE AS n_orders,
       coalesce(avg(days_since_prior_order::DOUBLE), 0) AS days_between_mean,
       coalesce(stddev_pop(days_since_prior_order::DOUBLE)
                / nullif(avg(days_since_prior_order::DOUBLE), 0), 0) AS order_interval_cv,
       avg(sin(2 * pi() * order_hour_of_day / 24)) AS hour_sin,
       avg(cos(2 * pi() * order_hour_of_day / 24)) AS hour_cos,
       avg(CASE WHEN order_dow IN (0, 1) THEN 1.0 ELSE 0.0 END) AS weekend_ratio
FROM history
GROUP BY user_id
"""

_ITEM_FEATURES = """
SELECT user_id,
       count(*)::DOUBLE / count(DISTINCT position) AS basket_size_mean,
       avg(organic::DOUBLE) AS organic_ratio,
       coalesce(avg(reordered::DOUBLE) FILTER (WHERE position > 1), 0) AS reorder_ratio,
       count(*)::DOUBLE / count(DISTINCT product_id) AS product_repeat_rate
FROM user_item
GROUP BY user_id
"""

_LOYALTY_HHI = """
SELECT c.user_id, sum((c.n / t.n) ^ 2) AS loyalty_hhi
FROM (SELECT user_id, product_id, count(*)::DOUBLE AS n FROM user_item GROUP BY ALL) c
JOIN n_items t ON t.user_id = c.user_id
GROUP BY c.user_id
"""

_DEPT_ENTROPY = """
SELECT user_id, -sum(share * ln(share)) / ln((SELECT count(*) FROM departments)) AS dept_entropy
FROM (SELECT i.user_id, i.department_id, count(*) / any_value(t.n) AS share
      FROM user_item i
      JOIN n_items t ON t.user_id = i.user_id
      WHERE i.department_id IN (SELECT department_id FROM departments)
      GROUP BY i.user_id, i.department_id)
GROUP BY user_id
"""

_AISLE_SHARES = """
SELECT i.user_id, i.aisle_id, count(*) / any_value(t.n) AS share
FROM user_item i
JOIN n_items t ON t.user_id = i.user_id
GROUP BY i.user_id, i.aisle_id
"""

_BASKET_CONSISTENCY = """
WITH basket AS (SELECT DISTINCT user_id, position, product_id FROM user_item),
basket_size AS (SELECT user_id, position, count(*) AS size FROM basket GROUP BY ALL),
shared AS (
    SELECT a.user_id, a.position, count(*) AS n_shared
    FROM basket a
    JOIN basket b ON b.user_id = a.user_id AND b.product_id = a.product_id
                 AND b.position = a.position + 1
    GROUP BY ALL),
consecutive AS (
    SELECT a.user_id,
           coalesce(s.n_shared, 0)::DOUBLE / (a.size + b.size - coalesce(s.n_shared, 0)) AS jaccard
    FROM basket_size a
    JOIN basket_size b ON b.user_id = a.user_id AND b.position = a.position + 1
    LEFT JOIN shared s ON s.user_id = a.user_id AND s.position = a.position)
SELECT user_id, avg(jaccard) AS basket_consistency FROM consecutive GROUP BY user_id
"""


@dataclass(frozen=True)
class ReferenceFeatures:
    table: pd.DataFrame
    n_users_with_history: int
    n_users_excluded: int
    n_product_rows_dropped: int


def reference_features(data: InstacartData, *, min_orders: int = 5) -> ReferenceFeatures:
    """The spec computed by DuckDB from pandas tables, in the column order of the feature table."""
    con = duckdb.connect()
    for name in ("orders", "order_products", "products", "aisles", "departments"):
        con.register(name, getattr(data, name))
    con.execute(_SETUP)
    table = con.sql(_ORDER_FEATURES).df().set_index("user_id")
    for query in (_ITEM_FEATURES, _LOYALTY_HHI, _DEPT_ENTROPY, _BASKET_CONSISTENCY):
        table = table.join(con.sql(query).df().set_index("user_id"))
    if len(data.departments) == 1:
        table["dept_entropy"] = 0.0  # ln(1) = 0: one department carries no diversity
    aisles = con.sql(_AISLE_SHARES).df().pivot(index="user_id", columns="aisle_id", values="share")
    aisles = aisles.reindex(columns=sorted(data.aisles["aisle_id"].tolist()))
    aisles.columns = [aisle_column(a) for a in aisles.columns]
    table = table.join(aisles).fillna(0.0)

    n_with_history = len(table)
    table = table[table["n_orders"] >= min_orders].sort_index()
    table.index = table.index.astype("int64")
    table = table[feature_columns(data.aisles["aisle_id"])].astype("float64")
    (n_product_rows_dropped,), = con.sql(
        "SELECT count(*) FROM order_products "
        "WHERE product_id NOT IN (SELECT product_id FROM products)").fetchall()
    return ReferenceFeatures(table, n_with_history, n_with_history - len(table),
                             int(n_product_rows_dropped))
