"""What a saved model keeps of the product catalog, so it can turn raw orders into features alone.

The features of a user (:func:`gpuseg.features.compute_features`) read the
catalog in three ways: each product's aisle and department, whether its name
contains "organic", and the full lists of aisles and departments (one share
column per aisle; the department entropy is normalised by their number). A
:class:`ModelCatalog` holds exactly that, in the order of the tables the model
was fitted on, and no product names: ``gpuseg serve`` rebuilds the three
catalog tables from it for the products a request names
(:meth:`ModelCatalog.tables`), and the features come out as a run computes them.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data.schema import AISLES_DTYPES, DEPARTMENTS_DTYPES, PRODUCTS_DTYPES
from .features import organic_flags

#: The stand-in product name of a product whose real name contains "organic" (the model keeps no
#: names); any other product gets an empty name. :func:`gpuseg.features.organic_flags` reads
#: both exactly as it read the real names.
ORGANIC_NAME = "organic"

#: The catalog's arrays in a model's ``arrays.npz``, by :class:`ModelCatalog` field.
CATALOG_ARRAYS = {"product_ids": "catalog_product_id", "product_aisles": "catalog_product_aisle_id",
                  "product_departments": "catalog_product_department_id",
                  "product_organic": "catalog_product_organic",
                  "aisle_ids": "catalog_aisle_id", "department_ids": "catalog_department_id"}


@dataclass(frozen=True, eq=False)
class ModelCatalog:
    """Products, aisles and departments as the features need them (host arrays, table order).

    Attributes
    ----------
    product_ids, product_aisles, product_departments : numpy.ndarray
        Each product's id, aisle id and department id (int64).
    product_organic : numpy.ndarray
        Whether each product's name contains "organic", any case (bool).
    aisle_ids, department_ids : numpy.ndarray
        Every aisle and department id (int64).
    aisle_names, department_names : tuple of str
        Their names, for the report-facing side of a model.
    """

    product_ids: np.ndarray
    product_aisles: np.ndarray
    product_departments: np.ndarray
    product_organic: np.ndarray
    aisle_ids: np.ndarray
    department_ids: np.ndarray
    aisle_names: tuple[str, ...]
    department_names: tuple[str, ...]
    #: Catalog rows by ascending product id: requests are matched to products by binary search.
    _by_id: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n_products = self.product_ids.shape[0]
        if any(array.shape != (n_products,) for array in
               (self.product_aisles, self.product_departments, self.product_organic)):
            raise ValueError("the catalog needs one aisle, department and organic flag per product")
        if (len(self.aisle_names) != self.aisle_ids.shape[0]
                or len(self.department_names) != self.department_ids.shape[0]):
            raise ValueError("the catalog needs one name per aisle and per department")
        if pd.Index(self.product_ids).has_duplicates:
            raise ValueError("the catalog's product ids repeat")
        object.__setattr__(self, "_by_id", np.argsort(self.product_ids, kind="stable"))

    @property
    def n_products(self) -> int:
        return int(self.product_ids.shape[0])

    @classmethod
    def from_tables(cls, products: Any, aisles: Any, departments: Any) -> ModelCatalog:
        """The catalog of three loaded tables (pandas or cuDF frames).

        The organic flag is computed where the tables are, by the rule the
        features use (:func:`gpuseg.features.organic_flags`); only the flags
        and ids come to the host.
        """
        def host(frame: Any) -> Any:
            # cuDF frames come back once; pandas ones (a distributed run reads its catalog on the
            # client) are already here.
            return frame.to_pandas() if hasattr(frame, "to_pandas") else frame

        organic = host(organic_flags(products["product_name"]))
        products = host(products[["product_id", "aisle_id", "department_id"]])
        aisles, departments = host(aisles), host(departments)
        return cls(product_ids=products["product_id"].to_numpy(np.int64),
                   product_aisles=products["aisle_id"].to_numpy(np.int64),
                   product_departments=products["department_id"].to_numpy(np.int64),
                   product_organic=organic.to_numpy(bool),
                   aisle_ids=aisles["aisle_id"].to_numpy(np.int64),
                   department_ids=departments["department_id"].to_numpy(np.int64),
                   aisle_names=tuple(aisles["aisle"].astype(str)),
                   department_names=tuple(departments["department"].astype(str)))

    def positions(self, product_ids: np.ndarray) -> np.ndarray:
        """Each id's row in the catalog (int64), -1 for an id the catalog does not hold."""
        by_id = self._by_id
        sorted_ids = self.product_ids[by_id]
        at = np.minimum(np.searchsorted(sorted_ids, product_ids), self.n_products - 1)
        return np.where(sorted_ids[at] == product_ids, by_id[at], -1).astype(np.int64)

    def tables(self, positions: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
        """``products``, ``aisles`` and ``departments`` as pandas frames with the loader's dtypes.

        Parameters
        ----------
        positions : numpy.ndarray, optional
            Catalog rows of the products to include (every product when None).
            They are taken in catalog order, so the features' sort keys and
            sums run in the same order as over the whole catalog.

        Notes
        -----
        Product names are stand-ins: :data:`ORGANIC_NAME` where the real name
        contained "organic", else empty.
        """
        rows = slice(None) if positions is None else np.unique(positions)
        organic = self.product_organic[rows]
        products = pd.DataFrame({
            "product_id": self.product_ids[rows].astype(PRODUCTS_DTYPES["product_id"]),
            "product_name": pd.array(np.where(organic, ORGANIC_NAME, ""), dtype="str"),
            "aisle_id": self.product_aisles[rows].astype(PRODUCTS_DTYPES["aisle_id"]),
            "department_id": self.product_departments[rows].astype(PRODUCTS_DTYPES["department_id"]),
        })
        return {"products": products, **self._taxonomy}

    @functools.cached_property
    def _taxonomy(self) -> dict[str, pd.DataFrame]:
        """The aisles and departments frames, built once: every batch of a service reads them."""
        aisles = pd.DataFrame({"aisle_id": self.aisle_ids.astype(AISLES_DTYPES["aisle_id"]),
                               "aisle": pd.array(self.aisle_names, dtype="str")})
        departments = pd.DataFrame({
            "department_id": self.department_ids.astype(DEPARTMENTS_DTYPES["department_id"]),
            "department": pd.array(self.department_names, dtype="str")})
        return {"aisles": aisles, "departments": departments}

    def to_saved(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays for ``arrays.npz`` (:data:`CATALOG_ARRAYS`) and the names for ``model.json``."""
        arrays = {stored: np.asarray(getattr(self, name)) for name, stored in CATALOG_ARRAYS.items()}
        names = {"aisles": list(self.aisle_names), "departments": list(self.department_names)}
        return arrays, names

    @classmethod
    def from_saved(cls, arrays: Mapping[str, np.ndarray], names: Mapping[str, Any]) -> ModelCatalog:
        """The inverse of :meth:`to_saved` (raises KeyError, ValueError or TypeError when damaged)."""
        values = {name: np.asarray(arrays[stored]) for name, stored in CATALOG_ARRAYS.items()}
        values = {name: value.astype(bool if name == "product_organic" else np.int64, copy=False)
                  for name, value in values.items()}
        return cls(**values, aisle_names=tuple(str(n) for n in names["aisles"]),
                   department_names=tuple(str(n) for n in names["departments"]))
