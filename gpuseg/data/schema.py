"""The Instacart layout: files, required columns and their compact dtypes.

This is the contract between the loader, the synthetic generator and the
feature stage. Every table reaches the pipeline with exactly these columns and
dtypes (``eval_set`` is optional; ``days_since_prior_order`` is NaN for a
user's first order).
"""
from __future__ import annotations

from types import MappingProxyType

#: Logical table name -> file stem in the Kaggle folder.
FILE_STEMS = MappingProxyType({
    "orders": "orders",
    "order_products__prior": "order_products__prior",
    "order_products__train": "order_products__train",
    "products": "products",
    "aisles": "aisles",
    "departments": "departments",
})

#: Files that may be absent (other retailers' exports have no train split).
OPTIONAL_FILES = frozenset({"order_products__train"})

#: Accepted file endings, in the order they are looked for.
FILE_SUFFIXES = (".parquet", ".csv", ".csv.zip", ".csv.gz")

ORDERS_DTYPES = MappingProxyType({
    "order_id": "int32",
    "user_id": "int32",
    "order_number": "int16",
    "order_dow": "int8",
    "order_hour_of_day": "int8",
    "days_since_prior_order": "float32",
})
#: Optional orders column; kept as a pandas category when present.
ORDERS_OPTIONAL = ("eval_set",)

ORDER_PRODUCTS_DTYPES = MappingProxyType({
    "order_id": "int32",
    "product_id": "int32",
    "add_to_cart_order": "int16",
    "reordered": "int8",
})

PRODUCTS_DTYPES = MappingProxyType({
    "product_id": "int32",
    "product_name": "str",
    "aisle_id": "int16",
    "department_id": "int8",
})

AISLES_DTYPES = MappingProxyType({"aisle_id": "int16", "aisle": "str"})
DEPARTMENTS_DTYPES = MappingProxyType({"department_id": "int8", "department": "str"})

TABLE_DTYPES = MappingProxyType({
    "orders": ORDERS_DTYPES,
    "order_products__prior": ORDER_PRODUCTS_DTYPES,
    "order_products__train": ORDER_PRODUCTS_DTYPES,
    "products": PRODUCTS_DTYPES,
    "aisles": AISLES_DTYPES,
    "departments": DEPARTMENTS_DTYPES,
})

#: Ranks that count from 1 (a user's first order, a basket's first item); their upper bound is
#: their dtype's. Checked by the loader.
RANK_COLUMNS = frozenset({"order_number", "add_to_cart_order"})

#: The values a text column of categories may take (the Kaggle export's evaluation sets).
CATEGORY_VALUES = MappingProxyType({"eval_set": ("prior", "train", "test")})

#: Text columns that name something the report shows, so may not be missing or blank.
NAME_COLUMNS = frozenset({"aisle", "department"})

#: Allowed value ranges, checked by the loader: column -> (min, max) inclusive.
VALUE_RANGES = MappingProxyType({
    "order_hour_of_day": (0, 23),
    "order_dow": (0, 6),
    "days_since_prior_order": (0, 30),
    "reordered": (0, 1),
})
