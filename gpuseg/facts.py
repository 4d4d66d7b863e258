"""What a run records about its input: where it came from, whose rows it kept, the catalog's names."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backend import Backend


@dataclass(frozen=True)
class InputFacts:
    """The data a run read: a folder (or ``kaggle:<handle>``, ``frames``), its fingerprint, and
    the rows dropped while cleaning it, by reason."""

    source: str
    fingerprint: str
    cleaning: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fingerprint": self.fingerprint,
                "cleaning": dict(self.cleaning)}


@dataclass(frozen=True)
class UserCounts:
    """Users with a product history, those below ``min_orders``, and those segmented."""

    with_history: int
    excluded_min_orders: int
    segmented: int

    def to_dict(self) -> dict[str, int]:
        return {"with_history": self.with_history,
                "excluded_min_orders": self.excluded_min_orders, "segmented": self.segmented}


@dataclass(frozen=True)
class CatalogNames:
    """Aisle and department names by id, and each aisle's department (small host dicts)."""

    aisles: Mapping[int, str]
    departments: Mapping[int, str]
    aisle_department: Mapping[int, int]

    def to_dict(self) -> dict[str, Any]:
        """The names as metrics.json holds them (ids as strings)."""
        return {"aisles": {str(k): v for k, v in self.aisles.items()},
                "departments": {str(k): v for k, v in self.departments.items()}}

    def as_keywords(self) -> dict[str, Mapping[int, Any]]:
        """``aisles=, departments=, aisle_department=``, as the profile and rule code takes them."""
        return {"aisles": self.aisles, "departments": self.departments,
                "aisle_department": self.aisle_department}


def catalog_names(aisles: Any, departments: Any, products: Any, backend: Backend) -> CatalogNames:
    """The names and aisle departments of the three catalog tables (backend or pandas frames)."""
    aisles = backend.to_host(aisles)
    departments = backend.to_host(departments)
    products = backend.to_host(products[["aisle_id", "department_id"]])
    # An aisle belongs to one department in Instacart's taxonomy; take the most common in case
    # an export disagrees with itself.
    aisle_department = (products.groupby("aisle_id")["department_id"]
                        .agg(lambda s: s.value_counts().index[0]))
    return CatalogNames(
        aisles=dict(zip(aisles["aisle_id"].astype(int), aisles["aisle"].astype(str))),
        departments=dict(zip(departments["department_id"].astype(int),
                             departments["department"].astype(str))),
        aisle_department={int(a): int(d) for a, d in aisle_department.items()})

