"""The Instacart taxonomy: its 134 aisles, 21 departments and which department holds each aisle.

These names and the aisle -> department mapping are facts of the public
Instacart Market Basket taxonomy (derived once from its ``aisles.csv``,
``departments.csv`` and the ``aisle_id``/``department_id`` pairs of
``products.csv``, where every aisle belongs to exactly one department). The
product catalog itself is not part of this project: the synthetic generator
invents its own product names.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import AISLES_DTYPES, DEPARTMENTS_DTYPES

#: Department names; ``department_id`` is the position + 1.
DEPARTMENTS = (
    "frozen",  # 1
    "other",  # 2
    "bakery",  # 3
    "produce",  # 4
    "alcohol",  # 5
    "international",  # 6
    "beverages",  # 7
    "pets",  # 8
    "dry goods pasta",  # 9
    "bulk",  # 10
    "personal care",  # 11
    "meat seafood",  # 12
    "pantry",  # 13
    "breakfast",  # 14
    "canned goods",  # 15
    "dairy eggs",  # 16
    "household",  # 17
    "babies",  # 18
    "snacks",  # 19
    "deli",  # 20
    "missing",  # 21
)

#: ``(aisle name, department_id)``; ``aisle_id`` is the position + 1.
AISLES = (
    ("prepared soups salads", 20),  # 1
    ("specialty cheeses", 16),  # 2
    ("energy granola bars", 19),  # 3
    ("instant foods", 9),  # 4
    ("marinades meat preparation", 13),  # 5
    ("other", 2),  # 6
    ("packaged meat", 12),  # 7
    ("bakery desserts", 3),  # 8
    ("pasta sauce", 9),  # 9
    ("kitchen supplies", 17),  # 10
    ("cold flu allergy", 11),  # 11
    ("fresh pasta", 9),  # 12
    ("prepared meals", 20),  # 13
    ("tofu meat alternatives", 20),  # 14
    ("packaged seafood", 12),  # 15
    ("fresh herbs", 4),  # 16
    ("baking ingredients", 13),  # 17
    ("bulk dried fruits vegetables", 10),  # 18
    ("oils vinegars", 13),  # 19
    ("oral hygiene", 11),  # 20
    ("packaged cheese", 16),  # 21
    ("hair care", 11),  # 22
    ("popcorn jerky", 19),  # 23
    ("fresh fruits", 4),  # 24
    ("soap", 11),  # 25
    ("coffee", 7),  # 26
    ("beers coolers", 5),  # 27
    ("red wines", 5),  # 28
    ("honeys syrups nectars", 13),  # 29
    ("latino foods", 6),  # 30
    ("refrigerated", 7),  # 31
    ("packaged produce", 4),  # 32
    ("kosher foods", 6),  # 33
    ("frozen meat seafood", 1),  # 34
    ("poultry counter", 12),  # 35
    ("butter", 16),  # 36
    ("ice cream ice", 1),  # 37
    ("frozen meals", 1),  # 38
    ("seafood counter", 12),  # 39
    ("dog food care", 8),  # 40
    ("cat food care", 8),  # 41
    ("frozen vegan vegetarian", 1),  # 42
    ("buns rolls", 3),  # 43
    ("eye ear care", 11),  # 44
    ("candy chocolate", 19),  # 45
    ("mint gum", 19),  # 46
    ("vitamins supplements", 11),  # 47
    ("breakfast bars pastries", 14),  # 48
    ("packaged poultry", 12),  # 49
    ("fruit vegetable snacks", 19),  # 50
    ("preserved dips spreads", 13),  # 51
    ("frozen breakfast", 1),  # 52
    ("cream", 16),  # 53
    ("paper goods", 17),  # 54
    ("shave needs", 11),  # 55
    ("diapers wipes", 18),  # 56
    ("granola", 14),  # 57
    ("frozen breads doughs", 1),  # 58
    ("canned meals beans", 15),  # 59
    ("trash bags liners", 17),  # 60
    ("cookies cakes", 19),  # 61
    ("white wines", 5),  # 62
    ("grains rice dried goods", 9),  # 63
    ("energy sports drinks", 7),  # 64
    ("protein meal replacements", 11),  # 65
    ("asian foods", 6),  # 66
    ("fresh dips tapenades", 20),  # 67
    ("bulk grains rice dried goods", 10),  # 68
    ("soup broth bouillon", 15),  # 69
    ("digestion", 11),  # 70
    ("refrigerated pudding desserts", 16),  # 71
    ("condiments", 13),  # 72
    ("facial care", 11),  # 73
    ("dish detergents", 17),  # 74
    ("laundry", 17),  # 75
    ("indian foods", 6),  # 76
    ("soft drinks", 7),  # 77
    ("crackers", 19),  # 78
    ("frozen pizza", 1),  # 79
    ("deodorants", 11),  # 80
    ("canned jarred vegetables", 15),  # 81
    ("baby accessories", 18),  # 82
    ("fresh vegetables", 4),  # 83
    ("milk", 16),  # 84
    ("food storage", 17),  # 85
    ("eggs", 16),  # 86
    ("more household", 17),  # 87
    ("spreads", 13),  # 88
    ("salad dressing toppings", 13),  # 89
    ("cocoa drink mixes", 7),  # 90
    ("soy lactosefree", 16),  # 91
    ("baby food formula", 18),  # 92
    ("breakfast bakery", 3),  # 93
    ("tea", 7),  # 94
    ("canned meat seafood", 15),  # 95
    ("lunch meat", 20),  # 96
    ("baking supplies decor", 13),  # 97
    ("juice nectars", 7),  # 98
    ("canned fruit applesauce", 15),  # 99
    ("missing", 21),  # 100
    ("air fresheners candles", 17),  # 101
    ("baby bath body care", 18),  # 102
    ("ice cream toppings", 19),  # 103
    ("spices seasonings", 13),  # 104
    ("doughs gelatins bake mixes", 13),  # 105
    ("hot dogs bacon sausage", 12),  # 106
    ("chips pretzels", 19),  # 107
    ("other creams cheeses", 16),  # 108
    ("skin care", 11),  # 109
    ("pickled goods olives", 13),  # 110
    ("plates bowls cups flatware", 17),  # 111
    ("bread", 3),  # 112
    ("frozen juice", 1),  # 113
    ("cleaning products", 17),  # 114
    ("water seltzer sparkling water", 7),  # 115
    ("frozen produce", 1),  # 116
    ("nuts seeds dried fruit", 19),  # 117
    ("first aid", 11),  # 118
    ("frozen dessert", 1),  # 119
    ("yogurt", 16),  # 120
    ("cereal", 14),  # 121
    ("meat counter", 12),  # 122
    ("packaged vegetables fruits", 4),  # 123
    ("spirits", 5),  # 124
    ("trail mix snack mix", 19),  # 125
    ("feminine care", 11),  # 126
    ("body lotions soap", 11),  # 127
    ("tortillas flat bread", 3),  # 128
    ("frozen appetizers sides", 1),  # 129
    ("hot cereal pancake mixes", 14),  # 130
    ("dry pasta", 9),  # 131
    ("beauty", 11),  # 132
    ("muscles joints pain relief", 11),  # 133
    ("specialty wines champagnes", 5),  # 134
)

N_AISLES = len(AISLES)
N_DEPARTMENTS = len(DEPARTMENTS)


def aisle_index(name: str) -> int:
    """Zero-based index (``aisle_id - 1``) of the aisle called ``name``."""
    return _AISLE_POSITION[name]


def department_of_aisle() -> np.ndarray:
    """Zero-based department index of every aisle, indexed by ``aisle_id - 1`` (int8)."""
    return np.array([department_id - 1 for _, department_id in AISLES], dtype=np.int8)


def aisles_frame() -> pd.DataFrame:
    """The ``aisles`` table (``aisle_id, aisle``) with the schema dtypes."""
    return pd.DataFrame({
        "aisle_id": np.arange(1, N_AISLES + 1),
        "aisle": [name for name, _ in AISLES],
    }).astype(dict(AISLES_DTYPES))


def departments_frame() -> pd.DataFrame:
    """The ``departments`` table (``department_id, department``) with the schema dtypes."""
    return pd.DataFrame({
        "department_id": np.arange(1, N_DEPARTMENTS + 1),
        "department": list(DEPARTMENTS),
    }).astype(dict(DEPARTMENTS_DTYPES))


_AISLE_POSITION = {name: position for position, (name, _) in enumerate(AISLES)}
