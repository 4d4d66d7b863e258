"""The synthetic product catalog, and drawing products and categories from it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import taxonomy
from ..schema import PRODUCTS_DTYPES
from .calibration import (
    N_PRODUCTS,
    POPULARITY_SKEW,
    Market,
    aisle_organic_counts,
    aisle_product_counts,
)
from .names import product_names


@dataclass(frozen=True)
class Catalog:
    """Products laid out in blocks by (aisle, organic), most popular first in each block.

    ``position`` indexes this layout; ``product_id`` is a random relabelling of it.
    """

    products: pd.DataFrame
    block_start: np.ndarray  # (aisle, organic) -> first position
    block_size: np.ndarray
    product_id_of_position: np.ndarray


def build_catalog(rng: np.random.Generator) -> Catalog:
    """The synthetic product catalog: the published aisle sizes and organic shares, named and
    numbered with ``rng``."""
    counts = aisle_product_counts()
    organic = aisle_organic_counts()
    block_size = np.stack([counts - organic, organic], axis=1)
    block_start = (np.cumsum(block_size.ravel()) - block_size.ravel()).reshape(block_size.shape)
    aisle_of_position = np.repeat(np.arange(taxonomy.N_AISLES), counts)
    names = product_names(rng, block_size)
    product_id_of_position = (rng.permutation(N_PRODUCTS) + 1).astype(np.int32)
    order = np.argsort(product_id_of_position)
    department = taxonomy.department_of_aisle()
    products = pd.DataFrame({
        "product_id": product_id_of_position[order],
        "product_name": pd.array(names, dtype="str")[order],
        "aisle_id": aisle_of_position[order] + 1,
        "department_id": department[aisle_of_position[order]] + 1,
    }).astype(dict(PRODUCTS_DTYPES))
    return Catalog(products, block_start, block_size, product_id_of_position)


def sample_products(rng: np.random.Generator, taste: np.ndarray, market: Market,
                     catalog: Catalog) -> np.ndarray:
    """Catalog positions drawn with each draw's persona taste: aisle, organic or not, then rank."""
    aisle = draw_categories(market.aisle_cdf, taste, rng.random(len(taste)))
    # Zero where an aisle has no organic product, so every drawn block is non-empty.
    organic = (rng.random(len(taste)) < market.organic_probability[taste, aisle]).astype(np.intp)
    size = catalog.block_size[aisle, organic]
    rank = (size * rng.random(len(taste)) ** POPULARITY_SKEW).astype(np.int64)
    np.minimum(rank, size - 1, out=rank)
    return catalog.block_start[aisle, organic] + rank


def draw_categories(cdfs: np.ndarray, group: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of each uniform from its group's distribution (one flat search)."""
    n_groups, n_categories = cdfs.shape
    table = (np.arange(n_groups)[:, None] + cdfs).ravel()
    position = np.searchsorted(table, group + uniforms, side="right")
    # group + u can round up to group + 1 in float64 when u is within 1e-16 of 1.
    return np.minimum(position - group * n_categories, n_categories - 1)
