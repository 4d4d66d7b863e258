"""Instacart's published marginals, and the persona distributions and catalog sizes fitted to them.

A persona's distribution over a variable is the published target tilted by the
persona and rescaled by matrix scaling (Sinkhorn), so the persona mixture
reproduces the target exactly whatever the tilts.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy.special import ndtr

from .. import taxonomy
from .personas import CADENCE_TILT_WIDTH, PERSONAS, SEPARATION_PARAMETERS, Separation

# ---------------------------------------------------------------------------------------------
# Published marginals (instacart-stats.json unless marked "reconstructed")
# ---------------------------------------------------------------------------------------------

MIN_ORDERS, MAX_ORDERS = 4, 100
#: Orders per user = 4 + a mixture of geometric counts, capped at 100; (weight, success
#: probability) fitted to 23,986 / 19,590 / 16,165 users with 4 / 5 / 6 orders
#: (reconstructed; they sum to the 59,741 of the stats file), 98,658 with 7-21,
#: 1,374 at the cap and 3,421,083 orders in all.
ORDER_COUNT_MIXTURE = ((0.1868, 0.2958), (0.4895, 0.0987), (0.3237, 0.0397))

MAX_BASKET = 145
#: Items per order 1..35 (subsample histogram of the stats file).
BASKET_HISTOGRAM_1_35 = (
    21847, 26292, 29046, 31054, 31923, 31698, 30822, 28539, 25742, 23248, 20406, 18539,
    16497, 14472, 12696, 11465, 10002, 8726, 7612, 6771, 5738, 5096, 4422, 3838, 3382,
    2812, 2458, 2137, 1899, 1618, 1328, 1171, 1003, 845, 686,
)
#: The subsample stops at 35 items; its geometric continuation to 145 with this ratio
#: gives the published prior mean of 10.09 items per order.
BASKET_TAIL_RATIO = 0.8567

#: Orders by hour of day 0..23 (all orders, verified).
HOUR_COUNTS = (
    22758, 12398, 7539, 5474, 5527, 9569, 30529, 91868, 178201, 257812, 288418, 284728,
    272841, 277999, 283042, 283639, 272553, 228795, 182912, 140569, 104292, 78109, 61468, 40043,
)
#: Orders by weekday 0..6 (0 and 4 verified, the rest reconstructed; sums to all orders).
DOW_COUNTS = (600905, 587478, 467260, 436972, 426339, 453368, 448761)
#: Orders by days since the prior order 0..30, 30 meaning "30 or more" (reconstructed
#: shape: weekly peak at 7, bumps at 14 and 21, the cap spike at 30).
DAYS_SINCE_PRIOR_COUNTS = (
    67755, 145247, 193206, 217005, 221696, 214503, 240013, 320608, 181717, 118188, 95186,
    80970, 76146, 83214, 100230, 66579, 46941, 39245, 41426, 34384, 38527, 45470, 32012,
    23885, 20712, 19234, 19016, 22013, 26777, 19191, 369323,
)
#: Prior product rows per department (produce, dairy eggs, snacks verified; the rest
#: reconstructed from public analyses, and together they sum exactly to the verified
#: 32,434,489 prior rows).
DEPARTMENT_ROWS = MappingProxyType({
    "produce": 9479291, "dairy eggs": 5414016, "snacks": 2887550, "beverages": 2690129,
    "frozen": 2236432, "pantry": 1875577, "bakery": 1176787, "canned goods": 1068058,
    "deli": 1051249, "dry goods pasta": 866627, "household": 738666, "breakfast": 709569,
    "meat seafood": 708931, "personal care": 447123, "babies": 423802,
    "international": 269253, "alcohol": 153696, "pets": 97724, "missing": 69145,
    "other": 36291, "bulk": 34573,
})
#: Relative popularity of the aisles inside their department (reconstructed, thousands of
#: prior rows); only the split within a department is used.
_AISLE_WEIGHTS = {
    "fresh fruits": 3642, "fresh vegetables": 3418, "packaged vegetables fruits": 1765,
    "fresh herbs": 377, "packaged produce": 276,
    "yogurt": 1452, "packaged cheese": 980, "milk": 891, "soy lactosefree": 638, "eggs": 452,
    "other creams cheeses": 256, "cream": 253, "specialty cheeses": 174, "butter": 163,
    "refrigerated pudding desserts": 61,
    "chips pretzels": 722, "crackers": 459, "energy granola bars": 456,
    "nuts seeds dried fruit": 270, "cookies cakes": 250, "candy chocolate": 215,
    "popcorn jerky": 173, "fruit vegetable snacks": 170, "trail mix snack mix": 43,
    "mint gum": 40, "ice cream toppings": 15,
    "water seltzer sparkling water": 842, "refrigerated": 576, "soft drinks": 376,
    "juice nectars": 352, "coffee": 160, "energy sports drinks": 140, "tea": 120,
    "cocoa drink mixes": 20,
    "frozen produce": 523, "ice cream ice": 498, "frozen meals": 390, "frozen breakfast": 120,
    "frozen appetizers sides": 110, "frozen pizza": 100, "frozen vegan vegetarian": 80,
    "frozen meat seafood": 75, "frozen dessert": 35, "frozen breads doughs": 30,
    "frozen juice": 10,
    "baking ingredients": 280, "spreads": 250, "condiments": 150, "spices seasonings": 140,
    "oils vinegars": 130, "preserved dips spreads": 120, "salad dressing toppings": 110,
    "pickled goods olives": 95, "honeys syrups nectars": 70, "doughs gelatins bake mixes": 70,
    "marinades meat preparation": 60, "baking supplies decor": 20,
    "bread": 585, "breakfast bakery": 250, "buns rolls": 180, "tortillas flat bread": 140,
    "bakery desserts": 40,
    "canned meals beans": 330, "soup broth bouillon": 250, "canned jarred vegetables": 240,
    "canned fruit applesauce": 120, "canned meat seafood": 100,
    "lunch meat": 395, "fresh dips tapenades": 354, "tofu meat alternatives": 140,
    "prepared meals": 100, "prepared soups salads": 80,
    "dry pasta": 250, "grains rice dried goods": 220, "pasta sauce": 200, "instant foods": 150,
    "fresh pasta": 50,
    "paper goods": 230, "dish detergents": 90, "laundry": 90, "cleaning products": 80,
    "food storage": 60, "trash bags liners": 50, "more household": 30,
    "plates bowls cups flatware": 30, "air fresheners candles": 25, "kitchen supplies": 15,
    "cereal": 356, "granola": 100, "breakfast bars pastries": 90, "hot cereal pancake mixes": 90,
    "hot dogs bacon sausage": 200, "packaged poultry": 150, "meat counter": 80,
    "packaged meat": 70, "seafood counter": 70, "poultry counter": 40, "packaged seafood": 30,
    "vitamins supplements": 60, "soap": 60, "oral hygiene": 50, "protein meal replacements": 50,
    "hair care": 30, "body lotions soap": 30, "cold flu allergy": 30, "feminine care": 30,
    "facial care": 25, "first aid": 20, "digestion": 20, "deodorants": 15, "skin care": 15,
    "eye ear care": 10, "shave needs": 10, "muscles joints pain relief": 10, "beauty": 5,
    "baby food formula": 382, "diapers wipes": 25, "baby bath body care": 9,
    "baby accessories": 8,
    "asian foods": 135, "latino foods": 95, "indian foods": 20, "kosher foods": 20,
    "beers coolers": 50, "red wines": 40, "white wines": 35, "spirits": 20,
    "specialty wines champagnes": 8,
    "cat food care": 55, "dog food care": 42,
    "missing": 69, "other": 36,
    "bulk grains rice dried goods": 22, "bulk dried fruits vegetables": 12,
}
#: Users whose last order is in the train split (the rest are test).
TRAIN_USER_SHARE = 131209 / 206209
N_PRODUCTS = 49688
_ORGANIC_PRODUCT_SHARE = 0.0978

# ---------------------------------------------------------------------------------------------
# Catalog model (the project's own; no real product appears)
# ---------------------------------------------------------------------------------------------

#: Share of a department's products that are organic, before rescaling to 9.78 % overall.
_DEPARTMENT_ORGANIC_SHARE = {
    "produce": 0.35, "dairy eggs": 0.2, "babies": 0.25, "bulk": 0.3, "breakfast": 0.18,
    "dry goods pasta": 0.15, "bakery": 0.12, "snacks": 0.12, "canned goods": 0.12,
    "pantry": 0.1, "frozen": 0.1, "meat seafood": 0.1, "missing": 0.1, "beverages": 0.08,
    "deli": 0.08, "international": 0.06, "personal care": 0.05, "other": 0.05,
    "household": 0.02, "pets": 0.02, "alcohol": 0.02,
}
#: Odds multiplier of buying the organic variant of a product, over the organic share
#: of its aisle's products; gives ~73 % of orders with an organic item (published 73.5 %).
_ORGANIC_PURCHASE_ODDS = 1.4
#: A product's popularity inside its block falls as rank**(1/skew - 1).
POPULARITY_SKEW = 4.0


# ---------------------------------------------------------------------------------------------
# Calibrated market: per-persona distributions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """Every persona's distributions for one separation level (rows follow ``PERSONAS``)."""

    separation: Separation
    persona_share: np.ndarray
    hour_cdf: np.ndarray
    dow_cdf: np.ndarray
    gap_cdf: np.ndarray
    basket_cdf: np.ndarray
    aisle_cdf: np.ndarray
    organic_probability: np.ndarray
    #: Share of all product rows bought by each persona (whom "market taste" draws follow).
    item_share: np.ndarray
    cadence_persistence: np.ndarray
    repertoire_share: np.ndarray


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values / values.sum(axis=-1, keepdims=True)


def _calibrated_pmfs(target: np.ndarray, tilts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Persona pmfs proportional to ``base * tilts[k]`` whose ``weights`` mixture is ``target``.

    Finding ``base`` is a matrix-scaling (Sinkhorn) problem, which always has a
    solution for positive tilts; the loop stops at a relative error of 1e-9.
    """
    target = _normalised(target)
    base = target.copy()
    for _ in range(10_000):
        pmfs = _normalised(base * tilts)
        mixture = weights @ pmfs
        if np.max(np.abs(mixture / target - 1.0)) < 1e-9:
            break
        base *= target / mixture
    return pmfs


def cumulative(pmfs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(pmfs, axis=-1)
    cdf[..., -1] = 1.0
    return cdf


@functools.cache
def market_for(separation_name: str) -> Market:
    sep = SEPARATION_PARAMETERS[separation_name]
    share = np.array([p.share for p in PERSONAS])
    basket = _basket_pmfs(sep, share)
    mean_basket = basket @ np.arange(1, MAX_BASKET + 1)
    item_share = _normalised(share * mean_basket)
    return Market(
        separation=sep,
        persona_share=share,
        hour_cdf=cumulative(_hour_pmfs(sep, share)),
        dow_cdf=cumulative(_dow_pmfs(sep, share)),
        gap_cdf=cumulative(_gap_pmfs(sep, share)),
        basket_cdf=cumulative(basket),
        aisle_cdf=cumulative(_aisle_pmfs(sep, item_share)),
        organic_probability=_organic_probability(sep),
        item_share=item_share,
        cadence_persistence=np.array([p.cadence_persistence for p in PERSONAS])
        * sep.cadence_persistence_scale,
        repertoire_share=np.array([p.repertoire_share[separation_name] for p in PERSONAS]),
    )


def _published_basket_pmf() -> np.ndarray:
    tail = BASKET_HISTOGRAM_1_35[-1] * BASKET_TAIL_RATIO ** np.arange(1, MAX_BASKET - 34)
    return _normalised(np.concatenate([BASKET_HISTOGRAM_1_35, tail]))


def _discretised_lognormal(median: float, spread: float, support: np.ndarray) -> np.ndarray:
    return _normalised(np.exp(-0.5 * (np.log(support / median) / spread) ** 2) / support)


def _basket_pmfs(sep: Separation, share: np.ndarray) -> np.ndarray:
    sizes = np.arange(1, MAX_BASKET + 1, dtype=np.float64)
    if sep.own_baskets_and_cadence:
        return np.stack([_discretised_lognormal(p.basket_median, p.basket_spread, sizes)
                         for p in PERSONAS])
    tilts = np.stack([sizes ** p.basket_tilt for p in PERSONAS])
    return _calibrated_pmfs(_published_basket_pmf(), tilts, share)


def _gap_pmfs(sep: Separation, share: np.ndarray) -> np.ndarray:
    days = np.arange(31, dtype=np.float64)
    if sep.own_baskets_and_cadence:
        return np.stack([_capped_normal(p.cadence_days, p.cadence_spread) for p in PERSONAS])
    distance = np.stack([(days - p.cadence_days) / CADENCE_TILT_WIDTH for p in PERSONAS])
    tilts = np.exp(-sep.cadence_contrast * np.minimum(distance ** 2, 4.0))
    return _calibrated_pmfs(np.array(DAYS_SINCE_PRIOR_COUNTS), tilts, share)


def _capped_normal(mean: float, spread: float) -> np.ndarray:
    """Whole days 0..30 around ``mean``; everything beyond 30 lands on 30, as in Instacart."""
    edges = (np.arange(32) - 0.5 - mean) / spread
    mass = np.diff(ndtr(edges))
    mass[-1] += 1.0 - ndtr(edges[-1])
    mass[0] += ndtr(edges[0])
    return _normalised(mass)


def _hour_pmfs(sep: Separation, share: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * np.arange(24) / 24
    tilts = np.stack([np.exp(sep.hour_contrast * np.cos(angle - 2 * np.pi * p.peak_hour / 24))
                      for p in PERSONAS])
    return _calibrated_pmfs(np.array(HOUR_COUNTS), tilts, share)


def _dow_pmfs(sep: Separation, share: np.ndarray) -> np.ndarray:
    weekend = np.isin(np.arange(7), (0, 1))
    affinity = np.array([p.weekend_affinity for p in PERSONAS])
    tilts = np.exp(sep.weekend_contrast * affinity[:, None] * weekend[None, :])
    return _calibrated_pmfs(np.array(DOW_COUNTS), tilts, share)


def _published_aisle_pmf() -> np.ndarray:
    department = taxonomy.department_of_aisle()
    weights = np.array([_AISLE_WEIGHTS[name] for name, _ in taxonomy.AISLES], dtype=np.float64)
    department_rows = np.array([DEPARTMENT_ROWS[name] for name in taxonomy.DEPARTMENTS])
    department_weight = np.bincount(department, weights=weights, minlength=taxonomy.N_DEPARTMENTS)
    return _normalised(weights / department_weight[department] * department_rows[department])


def _aisle_pmfs(sep: Separation, item_share: np.ndarray) -> np.ndarray:
    target = _published_aisle_pmf()
    tilts = []
    for persona in PERSONAS:
        affinity = np.zeros(taxonomy.N_AISLES)
        affinity[[taxonomy.aisle_index(a) for a in persona.favourite_aisles]] = 1.0
        affinity[[taxonomy.aisle_index(a) for a in persona.avoided_aisles]] = -1.0
        rarity = np.log(target.max() / target)
        tilts.append(np.exp(sep.aisle_contrast * (affinity + persona.aisle_flattening * rarity)))
    return _calibrated_pmfs(target, np.stack(tilts), item_share)


def _organic_probability(sep: Separation) -> np.ndarray:
    """Probability that a persona's draw in an aisle is an organic product (persona x aisle)."""
    share = _aisle_organic_share()
    base_odds = _ORGANIC_PURCHASE_ODDS * share / (1.0 - share)
    persona_odds = np.array([p.organic_odds for p in PERSONAS]) ** sep.organic_contrast
    odds = persona_odds[:, None] * base_odds[None, :]
    return odds / (1.0 + odds)


# ---------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------


def aisle_product_counts() -> np.ndarray:
    """Products per aisle: more in popular aisles, sub-linearly, at least 12, 49,688 in all."""
    weights = np.sqrt(_published_aisle_pmf())
    return largest_remainder(weights, N_PRODUCTS, minimum=12)


def aisle_organic_counts() -> np.ndarray:
    department = taxonomy.department_of_aisle()
    raw = np.array([_DEPARTMENT_ORGANIC_SHARE[name] for name in taxonomy.DEPARTMENTS])[department]
    counts = aisle_product_counts()
    scaled = raw * counts * (_ORGANIC_PRODUCT_SHARE * N_PRODUCTS / (raw * counts).sum())
    return np.minimum(np.rint(scaled).astype(np.int64), counts // 2)


def _aisle_organic_share() -> np.ndarray:
    return aisle_organic_counts() / aisle_product_counts()


def largest_remainder(weights: np.ndarray, total: int, *, minimum: int = 0) -> np.ndarray:
    """Whole numbers proportional to ``weights``, each >= ``minimum``, summing to ``total``."""
    spare = total - minimum * len(weights)
    exact = _normalised(weights) * spare
    counts = np.floor(exact).astype(np.int64)
    short = spare - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    return counts + minimum
