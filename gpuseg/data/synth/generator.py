"""The generator: users, orders and product rows drawn from the calibrated market, as tables."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ...errors import ConfigError
from ...vocabulary import PERSONA_NAMES
from .. import taxonomy
from ..schema import FILE_STEMS, ORDER_PRODUCTS_DTYPES
from .calibration import (
    MAX_ORDERS,
    MIN_ORDERS,
    ORDER_COUNT_MIXTURE,
    TRAIN_USER_SHARE,
    Market,
    cumulative,
    largest_remainder,
    market_for,
)
from .catalog import Catalog, build_catalog, draw_categories, sample_products
from .personas import (
    REPERTOIRE_BREADTH,
    REPERTOIRE_SHARE_CONCENTRATION,
    REPERTOIRE_SKEW,
    SEPARATIONS,
)

EVAL_SETS = ("prior", "train", "test")

#: Upper bound of ``n_users``: keeps order ids (up to 100 per user) inside int32.
MAX_USERS = 10_000_000
#: Users generated together from one seeded stream: the unit of out-of-core generation.
#: About 0.4 GB of peak memory with ``strong`` (fewer product rows with ``realistic``).
BLOCK_USERS = 20_000
# Children of the seed: the catalog, the plan (then block 0's users), block 0's orders and
# items; the later blocks' streams sit under the next spawn key.
_FIRST_BLOCK_STREAMS = 4
_BLOCK_TABLES = ("orders", "order_products__prior", "order_products__train", "truth")

# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticInstacart:
    """A generated data set: the six Kaggle Instacart tables and who was planted as what.

    Attributes
    ----------
    orders, order_products__prior, order_products__train, products, aisles, departments
        pandas DataFrames with the columns and dtypes of :mod:`gpuseg.data.schema`;
        ``orders`` carries ``eval_set`` (category: prior, train, test) and test
        orders have no product rows, as in the Kaggle export.
    truth : DataFrame
        ``user_id`` (int32), ``persona`` (str): the planted persona of every user.
        Never read by the loader.
    seed : int
    separation : {"strong", "realistic"}
    """

    orders: pd.DataFrame
    order_products__prior: pd.DataFrame
    order_products__train: pd.DataFrame
    products: pd.DataFrame
    aisles: pd.DataFrame
    departments: pd.DataFrame
    truth: pd.DataFrame
    seed: int
    separation: str

    def tables(self) -> dict[str, pd.DataFrame]:
        """The six Instacart tables by logical name (the keys of ``FILE_STEMS``)."""
        return {name: getattr(self, name) for name in FILE_STEMS}


def generate_instacart(n_users: int, *, seed: int = 0,
                       separation: str = "strong") -> SyntheticInstacart:
    """Generate an Instacart-shaped data set with planted personas.

    Parameters
    ----------
    n_users : int
        Number of users, in ``[1, MAX_USERS]``; 206,209 is Instacart's scale
        (about 3.4 M orders and, with ``realistic``, 33.5 M product rows where
        Instacart has 33.8 M; ``strong`` makes about twice as many).
    seed : int
        Seed of every random step, in ``[0, 2**32)``; the same seed gives the
        same tables, bit for bit.
    separation : {"strong", "realistic"}
        ``strong``: personas recoverable by clustering; basket size and cadence
        deviate from the published marginals. ``realistic``: published
        marginals matched, personas overlapping like real shoppers'.

    Returns
    -------
    SyntheticInstacart
        The blocks of :func:`generate_block`, concatenated in order.
    """
    plan = plan_instacart(n_users, seed=seed, separation=separation)
    blocks = [generate_block(plan, block) for block in range(plan.n_blocks)]
    tables = {name: pd.concat([getattr(b, name) for b in blocks], ignore_index=True)
              for name in _BLOCK_TABLES}
    return SyntheticInstacart(**tables, products=plan.catalog.products,
                              aisles=taxonomy.aisles_frame(),
                              departments=taxonomy.departments_frame(), seed=int(seed),
                              separation=separation)


@dataclass(frozen=True)
class SyntheticPlan:
    """What every block of a data set shares: the catalog and each user's persona and order count.

    Users are generated in blocks of :data:`BLOCK_USERS`; a block's draws are
    seeded by ``(seed, block)`` only, so any block can be made alone and the data
    set is the same whichever blocks are made together (what lets
    :func:`~gpuseg.data.synth.out_of_core.write_partitioned` write one
    partition at a time). The persona and train/test shares are exact over all
    users, so they are drawn here, once, with the order counts that fix every
    block's first order id. About 4 bytes per user.
    """

    n_users: int
    seed: int
    separation: str
    catalog: Catalog
    persona: np.ndarray  # int8 index into PERSONAS
    n_orders: np.ndarray  # int16
    ends_in_train: np.ndarray  # bool
    # The plan's generator after its draws (block 0 continues it).
    first_block_state: Mapping[str, Any]

    @property
    def n_blocks(self) -> int:
        return -(-self.n_users // BLOCK_USERS)

    def block_users(self, block: int) -> tuple[int, int]:
        """Dense index range ``[start, stop)`` of the users of ``block``."""
        start = block * BLOCK_USERS
        return start, min(start + BLOCK_USERS, self.n_users)

    def first_order(self, block: int) -> int:
        """Orders of the users before ``block`` (its first order id is this plus one)."""
        return int(self.n_orders[:self.block_users(block)[0]].sum(dtype=np.int64))


@dataclass(frozen=True)
class SyntheticBlock:
    """The users of one block: their orders, product rows and planted personas."""

    orders: pd.DataFrame
    order_products__prior: pd.DataFrame
    order_products__train: pd.DataFrame
    truth: pd.DataFrame


def plan_instacart(n_users: int, *, seed: int = 0, separation: str = "strong") -> SyntheticPlan:
    """The catalog and the per-user draws that every block of a data set shares.

    Parameters are those of :func:`generate_instacart`.
    """
    _validate(n_users, seed, separation)
    market = market_for(separation)
    catalog_seed, plan_seed, _, _ = np.random.SeedSequence(seed).spawn(_FIRST_BLOCK_STREAMS)
    catalog = build_catalog(np.random.default_rng(catalog_seed))
    rng = np.random.default_rng(plan_seed)
    persona = _exact_shares(rng, market.persona_share, n_users).astype(np.int8)
    n_orders = _draw_order_counts(rng, n_users).astype(np.int16)
    ends_in_train = _exact_shares(rng, np.array([1 - TRAIN_USER_SHARE, TRAIN_USER_SHARE]),
                                  n_users).astype(bool)
    return SyntheticPlan(int(n_users), int(seed), separation, catalog, persona, n_orders,
                         ends_in_train, rng.bit_generator.state)


def generate_block(plan: SyntheticPlan, block: int) -> SyntheticBlock:
    """The tables of one block of users; the same whichever other blocks are generated."""
    market = market_for(plan.separation)
    start, stop = plan.block_users(block)
    user_rng, order_rng, item_rng = _block_streams(plan, block)
    users = _draw_users(plan.persona[start:stop].astype(np.int64),
                        plan.n_orders[start:stop].astype(np.int64),
                        plan.ends_in_train[start:stop], market, plan.catalog, user_rng)
    orders = _draw_orders(users, market, order_rng)
    items = _draw_items(users, orders, market, plan.catalog, item_rng)
    return _assemble(users, orders, items, plan.catalog, first_user=start,
                     first_order=plan.first_order(block))


def _block_streams(plan: SyntheticPlan,
                   block: int) -> tuple[np.random.Generator, np.random.Generator,
                                        np.random.Generator]:
    """The user, order and item generators of one block, seeded by (seed, block) only.

    The first block continues the plan's stream and takes the seed's other two
    children, as the generator did before it worked in blocks, so a data set of
    at most :data:`BLOCK_USERS` users is the same as before for the same seed.
    Every later block has a child of the seed of its own.
    """
    if block == 0:
        _, plan_seed, order_seed, item_seed = np.random.SeedSequence(plan.seed).spawn(
            _FIRST_BLOCK_STREAMS)
        user_rng = np.random.default_rng(plan_seed)
        user_rng.bit_generator.state = plan.first_block_state
        return user_rng, np.random.default_rng(order_seed), np.random.default_rng(item_seed)
    streams = np.random.SeedSequence(plan.seed, spawn_key=(_FIRST_BLOCK_STREAMS, block)).spawn(3)
    user_rng, order_rng, item_rng = (np.random.default_rng(s) for s in streams)
    return user_rng, order_rng, item_rng


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _validate(n_users: object, seed: object, separation: object) -> None:
    if not (isinstance(n_users, (int, np.integer)) and not isinstance(n_users, bool)
            and 1 <= n_users <= MAX_USERS):
        raise ConfigError(f"n_users must be an integer in [1, {MAX_USERS:,}] (got {n_users!r})")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
            and 0 <= seed < 2**32):
        raise ConfigError(f"seed must be an integer in [0, 2**32) (got {seed!r})")
    if separation not in SEPARATIONS:
        raise ConfigError(
            f"separation must be one of {', '.join(SEPARATIONS)} (got {separation!r})")


# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Users:
    persona: np.ndarray  # int64 index into PERSONAS
    n_orders: np.ndarray
    ends_in_train: np.ndarray
    #: Standard-normal habit latents (copula) of basket size, hour and cadence.
    basket_habit: np.ndarray
    hour_habit: np.ndarray
    cadence_habit: np.ndarray
    own_taste_share: np.ndarray
    repertoire_share: np.ndarray
    repertoire_start: np.ndarray
    repertoire_size: np.ndarray
    repertoire: np.ndarray  # catalog positions, users' repertoires back to back


def _exact_shares(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    """Group labels in exactly the rounded shares, in random order."""
    labels = np.repeat(np.arange(len(shares)), largest_remainder(shares, n))
    return rng.permutation(labels)


def _draw_order_counts(rng: np.random.Generator, n_users: int) -> np.ndarray:
    weight, success = (np.array(column) for column in zip(*ORDER_COUNT_MIXTURE))
    component = np.searchsorted(np.cumsum(weight) / weight.sum(), rng.random(n_users), side="right")
    extra = rng.geometric(success[np.minimum(component, len(weight) - 1)]) - 1
    return np.minimum(MIN_ORDERS + extra, MAX_ORDERS).astype(np.int64)


def _beta_around(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


def _draw_users(persona: np.ndarray, n_orders: np.ndarray, ends_in_train: np.ndarray,
                market: Market, catalog: Catalog, rng: np.random.Generator) -> _Users:
    sep = market.separation
    n_users = len(persona)
    basket_habit, hour_habit, cadence_habit = rng.standard_normal((3, n_users))
    own_taste_share = _beta_around(rng, np.full(n_users, sep.own_taste_share),
                                   sep.own_taste_concentration)
    repertoire_share = _beta_around(rng, market.repertoire_share[persona],
                                    REPERTOIRE_SHARE_CONCENTRATION)
    usual_basket = 1 + draw_categories(market.basket_cdf, persona,
                                        ndtr(sep.basket_persistence * basket_habit))
    # A basket takes at most size / (1 + skew) repertoire products (see _favourites); the
    # two extra products give even one-item shoppers favourites to come back to.
    repertoire_size = np.ceil(REPERTOIRE_BREADTH * (1 + REPERTOIRE_SKEW)
                              * repertoire_share * usual_basket).astype(np.int64) + 2
    repertoire_start = np.cumsum(repertoire_size) - repertoire_size
    owner = np.repeat(np.arange(n_users), repertoire_size)
    taste = _tastes(rng, persona[owner], own_taste_share[owner], market)
    repertoire = sample_products(rng, taste, market, catalog)
    return _Users(persona, n_orders, ends_in_train, basket_habit, hour_habit, cadence_habit,
                  own_taste_share, repertoire_share, repertoire_start, repertoire_size, repertoire)


def _tastes(rng: np.random.Generator, persona: np.ndarray, own_share: np.ndarray,
            market: Market) -> np.ndarray:
    """Whose tastes each draw follows: the user's persona, or the market as a whole."""
    market_taste = draw_categories(cumulative(market.item_share)[None, :], np.zeros_like(persona),
                                    rng.random(len(persona)))
    return np.where(rng.random(len(persona)) < own_share, persona, market_taste)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Orders:
    owner: np.ndarray  # dense user index (int32), orders sorted by (user, order_number)
    order_number: np.ndarray
    eval_code: np.ndarray  # index into EVAL_SETS
    dow: np.ndarray
    hour: np.ndarray
    days_since_prior: np.ndarray  # float32, NaN for first orders
    basket_size: np.ndarray  # product rows to draw (0 for test orders)
    order_id: np.ndarray  # int32, a random relabelling of 1..n (the order items are drawn in)
    by_order_id: np.ndarray  # dense order indices in ascending order_id


def _habit_uniforms(rng: np.random.Generator, habit: np.ndarray,
                    persistence: np.ndarray | float) -> np.ndarray:
    """Uniforms correlated within a user: persistence 1 repeats the habit, 0 ignores it."""
    persistence = np.asarray(persistence)
    noise = rng.standard_normal(len(habit))
    return ndtr(persistence * habit + np.sqrt(1.0 - persistence ** 2) * noise)


def _draw_orders(users: _Users, market: Market, rng: np.random.Generator) -> _Orders:
    sep = market.separation
    owner = np.repeat(np.arange(len(users.persona), dtype=np.int32), users.n_orders)
    order_number = _ranks_within_groups(users.n_orders) + 1
    persona = users.persona[owner]
    is_last = order_number == users.n_orders[owner]
    eval_code = np.where(is_last, np.where(users.ends_in_train[owner], 1, 2), 0)
    dow = draw_categories(market.dow_cdf, persona, rng.random(len(owner)))
    hour = draw_categories(market.hour_cdf, persona,
                            _habit_uniforms(rng, users.hour_habit[owner], sep.hour_persistence))
    gap = draw_categories(market.gap_cdf, persona,
                           _habit_uniforms(rng, users.cadence_habit[owner],
                                           market.cadence_persistence[persona]))
    days_since_prior = np.where(order_number == 1, np.nan, gap).astype(np.float32)
    basket = 1 + draw_categories(market.basket_cdf, persona,
                                  _habit_uniforms(rng, users.basket_habit[owner],
                                                  sep.basket_persistence))
    basket_size = np.where(eval_code == 2, 0, basket)
    order_id = (rng.permutation(len(owner)) + 1).astype(np.int32)
    by_order_id = np.empty(len(owner), dtype=np.int32)
    by_order_id[order_id - 1] = np.arange(len(owner), dtype=np.int32)
    return _Orders(owner, order_number, eval_code, dow, hour, days_since_prior, basket_size,
                   order_id, by_order_id)


def _ranks_within_groups(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size - 1 for each group in turn (int32), without materialising int64 indices."""
    sizes = sizes[sizes > 0]
    step = np.ones(int(sizes.sum()), dtype=np.int32)
    step[np.cumsum(sizes)[:-1]] = 1 - sizes[:-1]
    ranks = np.cumsum(step, dtype=np.int32)
    ranks -= 1
    return ranks


# ---------------------------------------------------------------------------------------------
# Product rows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Items:
    """Product rows in the Kaggle file order: ascending order_id, then cart order."""

    order: np.ndarray  # dense order index (int32)
    position: np.ndarray  # catalog position (int32)
    add_to_cart_order: np.ndarray  # int16
    reordered: np.ndarray  # int8


def _draw_items(users: _Users, orders: _Orders, market: Market, catalog: Catalog,
                rng: np.random.Generator) -> _Items:
    owner = orders.owner
    from_repertoire = np.minimum(
        np.floor(users.repertoire_share[owner] * orders.basket_size + rng.random(len(owner))),
        users.repertoire_size[owner] // (1 + REPERTOIRE_SKEW),
    ).astype(np.int32)
    basket_in_file_order = orders.basket_size[orders.by_order_id]
    order = np.repeat(orders.by_order_id, basket_in_file_order)
    slot = _ranks_within_groups(basket_in_file_order)
    favourite = slot < from_repertoire[order]
    position = np.empty(len(order), dtype=np.int32)
    position[favourite] = _favourites(rng, order[favourite], slot[favourite], from_repertoire,
                                      owner, users)
    fresh = ~favourite
    del favourite
    fresh_owner = owner[order[fresh]]
    taste = _tastes(rng, users.persona[fresh_owner], users.own_taste_share[fresh_owner], market)
    del fresh_owner
    position[fresh] = sample_products(rng, taste, market, catalog)
    del taste, fresh
    return _history(order, slot, position, orders, len(users.persona))


def _favourites(rng: np.random.Generator, order: np.ndarray, slot: np.ndarray,
                from_repertoire: np.ndarray, owner: np.ndarray, users: _Users) -> np.ndarray:
    """Distinct repertoire products for each order, favourites more often.

    Systematic sampling: the order's k slots are k evenly spaced points (with one
    random offset per order) pushed through the inverse CDF of the rank weights
    ``(1 - x) ** skew``. The weights' density never exceeds ``1 + skew``, so
    neighbouring points land at least ``size / (k (1 + skew)) >= 1`` ranks apart
    and no product repeats within the order.
    """
    quantile = rng.random(len(from_repertoire))[order]
    quantile += slot
    quantile /= from_repertoire[order]
    user = owner[order]
    size = users.repertoire_size[user]
    np.subtract(1.0, quantile, out=quantile)
    np.power(quantile, 1.0 / (1.0 + REPERTOIRE_SKEW), out=quantile)
    np.subtract(1.0, quantile, out=quantile)
    quantile *= size
    rank = np.minimum(quantile.astype(np.int64), size - 1)
    del quantile
    rank += users.repertoire_start[user]
    return users.repertoire[rank]


def _history(order: np.ndarray, slot: np.ndarray, position: np.ndarray, orders: _Orders,
             n_users: int) -> _Items:
    """``reordered`` from each user's history; a product twice in one order is kept once.

    One sort of int64 keys ``user | product | order_number | slot`` groups the
    rows by user, then product, then time: a row is a reorder when the row
    before it is the same user and product in an earlier order, and a duplicate
    when it is in the same order. The key also locates the row it came from.
    """
    slot_bits = int(slot.max(initial=1)).bit_length()
    number_bits = int(orders.order_number.max(initial=1)).bit_length()
    product_bits = int(position.max(initial=1)).bit_length()
    keys = orders.owner[order].astype(np.int64)
    for values, bits in ((position, product_bits), (orders.order_number[order], number_bits),
                         (slot, slot_bits)):
        keys <<= bits
        keys |= values
    keys.sort()
    rows = _rows_of_keys(keys, orders, slot_bits, number_bits, product_bits)
    time = keys >> slot_bits
    duplicate = np.zeros(len(keys), dtype=bool)
    np.equal(time[1:], time[:-1], out=duplicate[1:])
    time >>= number_bits
    reorder = np.zeros(len(keys), dtype=bool)
    np.equal(time[1:], time[:-1], out=reorder[1:])
    del time, keys
    reorder &= ~duplicate
    reordered = np.zeros(len(order), dtype=np.int8)
    reordered[rows[reorder]] = 1
    keep = np.ones(len(order), dtype=bool)
    keep[rows[duplicate]] = False
    del rows, reorder, duplicate
    order, position, reordered = order[keep], position[keep], reordered[keep]
    rows_per_order = np.bincount(order, minlength=len(orders.owner))[orders.by_order_id]
    add_to_cart = (_ranks_within_groups(rows_per_order) + 1).astype(np.int16)
    return _Items(order, position, add_to_cart, reordered)


def _rows_of_keys(keys: np.ndarray, orders: _Orders, slot_bits: int, number_bits: int,
                  product_bits: int) -> np.ndarray:
    """Row (file position) of every sorted key: its order's first row plus its slot."""
    n_orders = len(orders.owner)
    rows_per_order = orders.basket_size[orders.by_order_id]
    first_row_by_id = np.cumsum(rows_per_order) - rows_per_order
    first_row = np.empty(n_orders, dtype=np.int64)
    first_row[orders.by_order_id] = first_row_by_id
    first_order_of_user = np.flatnonzero(orders.order_number == 1)
    dense_order = keys >> (slot_bits + number_bits + product_bits)
    dense_order = first_order_of_user[dense_order]
    number = keys >> slot_bits
    number &= (1 << number_bits) - 1
    dense_order += number - 1
    del number
    rows = first_row[dense_order]
    del dense_order
    rows += keys & ((1 << slot_bits) - 1)
    return rows


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _assemble(users: _Users, orders: _Orders, items: _Items, catalog: Catalog, *,
              first_user: int, first_order: int) -> SyntheticBlock:
    """The block's tables; user and order ids continue from the blocks before it.

    Each user's orders take consecutive order ids, in the random order of the
    drawn ids (so ids still say nothing about time), which sorts the product
    rows, like Kaggle's, by order id and at once by user: any range of users is
    then a contiguous slice of every table, and the partitions of
    :func:`~gpuseg.data.synth.write_partitioned` concatenate to these tables.
    """
    by_user_then_drawn_id = np.lexsort((orders.order_id, orders.owner))
    order_id = np.empty(len(orders.owner), dtype=np.int32)
    order_id[by_user_then_drawn_id] = np.arange(first_order + 1,
                                                first_order + len(orders.owner) + 1,
                                                dtype=np.int32)
    orders_frame = pd.DataFrame({
        "order_id": order_id,
        "user_id": (orders.owner + 1 + first_user).astype(np.int32),
        "eval_set": pd.Categorical.from_codes(orders.eval_code, categories=list(EVAL_SETS)),
        "order_number": orders.order_number.astype(np.int16),
        "order_dow": orders.dow.astype(np.int8),
        "order_hour_of_day": orders.hour.astype(np.int8),
        "days_since_prior_order": orders.days_since_prior,
    })
    in_train = orders.eval_code[items.order] == 1
    truth = pd.DataFrame({
        "user_id": np.arange(first_user + 1, first_user + len(users.persona) + 1,
                             dtype=np.int32),
        "persona": pd.array(np.array(PERSONA_NAMES, dtype=object)[users.persona], dtype="str"),
    })
    return SyntheticBlock(
        orders=orders_frame,
        order_products__prior=_product_rows(items, ~in_train, order_id, catalog),
        order_products__train=_product_rows(items, in_train, order_id, catalog),
        truth=truth,
    )


def _product_rows(items: _Items, selected: np.ndarray, order_id: np.ndarray,
                  catalog: Catalog) -> pd.DataFrame:
    """The selected rows in file order: by order id, each order's rows in cart order."""
    ids = order_id[items.order[selected]]
    # The rows come ordered by drawn id; a stable sort by final id keeps each cart's order.
    file_order = np.argsort(ids, kind="stable")
    columns = {
        "order_id": ids[file_order],
        "product_id": catalog.product_id_of_position[items.position[selected][file_order]],
        "add_to_cart_order": items.add_to_cart_order[selected][file_order],
        "reordered": items.reordered[selected][file_order],
    }
    assert all(columns[name].dtype == dtype for name, dtype in ORDER_PRODUCTS_DTYPES.items())
    return pd.DataFrame(columns, copy=False)
