"""The planted shopper personas, and the separation levels that set how far apart they are."""
from __future__ import annotations

from dataclasses import dataclass

from ...vocabulary import (
    BULK_PANTRY_STOCKERS,
    BUSY_CONVENIENCE_SEEKERS,
    EXPLORATORY_FOODIES,
    FAMILY_SHOPPERS,
    HEALTH_CONSCIOUS_REGULARS,
    PERSONA_NAMES,
)

SEPARATIONS = ("strong", "realistic")

# ---------------------------------------------------------------------------------------------
# Personas
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Persona:
    """How one persona tilts the market; contrasts come from the separation level."""

    name: str
    share: float
    favourite_aisles: tuple[str, ...]
    avoided_aisles: tuple[str, ...]
    #: > 0 spreads purchases towards rarer aisles (category diversity): added to the
    #: affinity per unit of log rarity (log of the top aisle's share over the aisle's).
    aisle_flattening: float
    organic_odds: float
    peak_hour: float
    weekend_affinity: float
    #: realistic: exponent of the basket-size tilt ``size ** basket_tilt``.
    basket_tilt: float
    #: strong: median basket and its log spread.
    basket_median: float
    basket_spread: float
    cadence_days: float
    #: strong: spread (days) of the gaps around ``cadence_days``.
    cadence_spread: float
    #: How much each user keeps their own rhythm (copula correlation of their gaps).
    cadence_persistence: float
    #: Share of a basket taken from the user's repertoire, by separation.
    repertoire_share: dict[str, float]


PERSONAS = (
    _Persona(
        name=HEALTH_CONSCIOUS_REGULARS, share=0.18,
        favourite_aisles=(
            "fresh fruits", "fresh vegetables", "packaged vegetables fruits", "fresh herbs",
            "packaged produce", "yogurt", "soy lactosefree", "eggs", "tofu meat alternatives",
            "nuts seeds dried fruit", "granola", "hot cereal pancake mixes",
            "bulk dried fruits vegetables", "bulk grains rice dried goods",
            "grains rice dried goods", "vitamins supplements", "protein meal replacements",
            "tea", "water seltzer sparkling water", "frozen produce", "fresh dips tapenades",
            "frozen vegan vegetarian", "poultry counter",
        ),
        avoided_aisles=(
            "soft drinks", "candy chocolate", "chips pretzels", "frozen pizza", "frozen meals",
            "cookies cakes", "hot dogs bacon sausage", "ice cream ice", "energy sports drinks",
            "frozen appetizers sides", "beers coolers", "spirits", "ice cream toppings",
            "instant foods", "popcorn jerky",
        ),
        aisle_flattening=0.0, organic_odds=4.0, peak_hour=9.5, weekend_affinity=-0.5,
        basket_tilt=0.0, basket_median=12.0, basket_spread=0.3,
        cadence_days=7.0, cadence_spread=1.0, cadence_persistence=0.9,
        repertoire_share={"strong": 0.83, "realistic": 0.92},
    ),
    _Persona(
        name=BULK_PANTRY_STOCKERS, share=0.24,
        favourite_aisles=(
            "canned meals beans", "canned jarred vegetables", "canned meat seafood",
            "canned fruit applesauce", "soup broth bouillon", "dry pasta", "pasta sauce",
            "baking ingredients", "baking supplies decor", "doughs gelatins bake mixes",
            "condiments", "spreads", "salad dressing toppings", "paper goods",
            "trash bags liners", "laundry", "dish detergents", "cleaning products",
            "food storage", "more household", "plates bowls cups flatware", "kitchen supplies",
            "air fresheners candles", "coffee", "cereal", "dog food care", "cat food care",
            "frozen meat seafood",
        ),
        avoided_aisles=(
            "fresh fruits", "fresh vegetables", "fresh herbs", "packaged produce",
            "prepared meals", "prepared soups salads", "fresh dips tapenades",
            "bakery desserts", "specialty cheeses", "seafood counter", "fresh pasta",
        ),
        aisle_flattening=0.0, organic_odds=0.6, peak_hour=13.5, weekend_affinity=0.0,
        basket_tilt=0.9, basket_median=34.0, basket_spread=0.2,
        cadence_days=28.0, cadence_spread=2.5, cadence_persistence=0.9,
        repertoire_share={"strong": 0.72, "realistic": 0.75},
    ),
    _Persona(
        name=BUSY_CONVENIENCE_SEEKERS, share=0.15,
        favourite_aisles=(
            "prepared meals", "prepared soups salads", "frozen meals", "frozen pizza",
            "frozen appetizers sides", "frozen breakfast", "instant foods", "chips pretzels",
            "popcorn jerky", "candy chocolate", "soft drinks", "energy sports drinks",
            "ice cream ice", "beers coolers", "mint gum", "breakfast bars pastries",
            "frozen dessert", "trail mix snack mix", "refrigerated", "energy granola bars",
            "ice cream toppings", "refrigerated pudding desserts",
        ),
        avoided_aisles=(
            "fresh vegetables", "fresh herbs", "baking ingredients", "baking supplies decor",
            "spices seasonings", "bulk grains rice dried goods", "bulk dried fruits vegetables",
            "grains rice dried goods", "baby food formula", "diapers wipes",
            "canned jarred vegetables", "oils vinegars", "dry pasta",
        ),
        aisle_flattening=0.0, organic_odds=0.7, peak_hour=21.5, weekend_affinity=-0.5,
        basket_tilt=-0.6, basket_median=6.0, basket_spread=0.4,
        cadence_days=6.0, cadence_spread=8.0, cadence_persistence=0.2,
        repertoire_share={"strong": 0.52, "realistic": 0.56},
    ),
    _Persona(
        name=FAMILY_SHOPPERS, share=0.28,
        favourite_aisles=(
            "milk", "eggs", "bread", "butter", "packaged cheese", "cereal", "juice nectars",
            "lunch meat", "hot dogs bacon sausage", "packaged poultry", "packaged meat",
            "meat counter", "fruit vegetable snacks", "crackers", "cookies cakes",
            "baby food formula", "diapers wipes", "baby accessories", "baby bath body care",
            "buns rolls", "tortillas flat bread", "cream", "other creams cheeses",
            "oral hygiene", "hair care", "body lotions soap", "cold flu allergy", "first aid",
        ),
        avoided_aisles=(
            "specialty wines champagnes", "red wines", "white wines", "spirits",
            "beers coolers", "specialty cheeses", "indian foods", "kosher foods",
            "protein meal replacements", "vitamins supplements",
        ),
        aisle_flattening=0.0, organic_odds=1.0, peak_hour=16.5, weekend_affinity=0.3,
        basket_tilt=0.6, basket_median=22.0, basket_spread=0.12,
        cadence_days=14.0, cadence_spread=1.5, cadence_persistence=0.9,
        repertoire_share={"strong": 0.72, "realistic": 0.75},
    ),
    _Persona(
        name=EXPLORATORY_FOODIES, share=0.15,
        favourite_aisles=(
            "specialty cheeses", "specialty wines champagnes", "red wines", "white wines",
            "asian foods", "indian foods", "latino foods", "kosher foods", "fresh pasta",
            "seafood counter", "marinades meat preparation", "pickled goods olives",
            "preserved dips spreads", "spices seasonings", "honeys syrups nectars",
            "oils vinegars", "bakery desserts", "breakfast bakery", "cocoa drink mixes",
            "frozen breads doughs", "other", "spirits",
        ),
        avoided_aisles=(
            "frozen meals", "frozen pizza", "instant foods", "canned meals beans", "soft drinks",
            "baby food formula", "diapers wipes",
        ),
        aisle_flattening=0.3, organic_odds=1.5, peak_hour=12.0, weekend_affinity=1.5,
        basket_tilt=0.0, basket_median=12.0, basket_spread=0.3,
        cadence_days=10.0, cadence_spread=3.0, cadence_persistence=0.6,
        repertoire_share={"strong": 0.42, "realistic": 0.46},
    ),
)
assert tuple(p.name for p in PERSONAS) == PERSONA_NAMES


@dataclass(frozen=True)
class Separation:
    """How far apart the personas are planted."""

    aisle_contrast: float
    organic_contrast: float
    hour_contrast: float
    weekend_contrast: float
    cadence_contrast: float
    #: Mean share of a user's draws made with their own persona's tastes (the rest
    #: follow the whole market's), and how concentrated it is across users.
    own_taste_share: float
    own_taste_concentration: float
    #: Copula correlations: how much each user keeps their basket size and hour, and
    #: the factor on each persona's cadence persistence.
    basket_persistence: float
    hour_persistence: float
    cadence_persistence_scale: float
    #: Basket size and cadence: the personas' own (True) or tilts of the published ones.
    own_baskets_and_cadence: bool


SEPARATION_PARAMETERS = {
    "strong": Separation(
        aisle_contrast=2.5, organic_contrast=1.0, hour_contrast=2.0, weekend_contrast=1.5,
        cadence_contrast=1.0, own_taste_share=0.97, own_taste_concentration=200.0,
        basket_persistence=0.8, hour_persistence=0.7, cadence_persistence_scale=1.0,
        own_baskets_and_cadence=True,
    ),
    "realistic": Separation(
        aisle_contrast=0.6, organic_contrast=0.5, hour_contrast=0.5, weekend_contrast=0.4,
        cadence_contrast=0.4, own_taste_share=0.5, own_taste_concentration=6.0,
        basket_persistence=0.6, hour_persistence=0.5, cadence_persistence_scale=0.8,
        own_baskets_and_cadence=False,
    ),
}

#: Days over which a realistic persona's preference for its cadence fades (capped at 2 widths).
CADENCE_TILT_WIDTH = 7.0
#: Favourites' weight in a repertoire falls as (1 - rank / size) ** this.
REPERTOIRE_SKEW = 0.5
#: The most a basket may take from the repertoire, in multiples of what the user's usual
#: basket takes (this sets the repertoire's size).
REPERTOIRE_BREADTH = 1.6
#: Concentration (a + b) of each user's repertoire share around their persona's.
REPERTOIRE_SHARE_CONCENTRATION = 30.0
