"""Calibrated synthetic Instacart data with planted shopper personas.

:func:`generate_instacart` builds the six Kaggle Instacart tables for any
number of users, plus a ground truth of which persona each user was planted
as; :func:`write_instacart` writes them in the Kaggle folder layout.

The model
---------
Every user is planted as one persona of :data:`gpuseg.vocabulary.PERSONA_NAMES`
in fixed shares. A persona is a set of tilts on Instacart's published
marginals: the aisles it favours or avoids, how much organic it buys, the hour
and weekday it shops, its basket size and its cadence. Per-user habits (a usual
basket size, hour and rhythm) are Gaussian-copula latents, so one user's orders
resemble each other while the marginals over all orders stay the persona's.

Each user keeps a repertoire of products drawn from their persona's catalog
distribution; a user-specific share of every basket is taken from it (favourites
more often) and the rest is drawn fresh from the catalog. ``reordered`` is
derived afterwards from each user's own history, so it is 1 exactly when the
user bought that product in an earlier order. The rare product drawn twice
into one basket is kept once (0.7 % of draws with ``realistic``, 1.6 % with
``strong``), so baskets come out that much smaller than drawn.

Calibration
-----------
The targets are the published counts in ``instacart-stats.json``: orders per
user (4-100, 1,374 of 206,209 users at the cap), the items-per-order
histogram, orders by hour and weekday, produce / dairy eggs / snacks shares of
product rows, the reorder ratio and the train/test split. Where the stats file
has only part of a distribution (days since prior order, aisle shares inside a
department) the shape is reconstructed from public exploratory analyses of the
data set and marked so below. A persona's distribution over a variable is the
target tilted by the persona and rescaled by matrix scaling (Sinkhorn), so the
persona mixture reproduces the target exactly whatever the tilts.

Separation
----------
``"realistic"`` tilts the personas mildly and mixes a large share of every
user's items from other personas' tastes: every published marginal above is
matched (orders per user, items per order, hour, weekday, days since prior
order, department shares, reorder ratio), and the personas overlap about as
much as real shoppers do.

``"strong"`` makes the personas recoverable by clustering: steep aisle, hour
and weekday tilts, and almost no mixing. Hour, weekday and department
marginals still match, but basket size and cadence are the personas' own and
deviate from the published ones: Bulk Pantry Stockers buy 30+ items about
monthly, Family Shoppers 20-25 items fortnightly, Health-Conscious Regulars
weekly, so the mean basket is about 19 items rather than 10 (twice the product
rows) and ``days_since_prior_order`` peaks at 7, 14 and 28-30 instead of
following the published curve.
"""
from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from scipy.special import ndtr

from ..errors import ConfigError
from ..vocabulary import (
    BULK_PANTRY_STOCKERS,
    BUSY_CONVENIENCE_SEEKERS,
    EXPLORATORY_FOODIES,
    FAMILY_SHOPPERS,
    HEALTH_CONSCIOUS_REGULARS,
    PERSONA_NAMES,
)
from . import taxonomy
from .schema import FILE_STEMS, ORDER_PRODUCTS_DTYPES, PRODUCTS_DTYPES

SEPARATIONS = ("strong", "realistic")
FORMATS = ("csv", "parquet")
TRUTH_FILE = "personas_truth.csv"
EVAL_SETS = ("prior", "train", "test")

#: Upper bound of ``n_users``: keeps order ids (up to 100 per user) inside int32.
MAX_USERS = 10_000_000

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
_POPULARITY_SKEW = 4.0

_BRANDS = (
    "Brookvale", "Sunmeadow", "Kettleby", "Amberfield", "Northgrove", "Wildmere", "Stonecrest",
    "Fernhollow", "Clearbrook", "Maplewick", "Goldfinch Farm", "Riverbend", "Hearthside",
    "Bluestem", "Oakhaven", "Pinecrest", "Willowmoor", "Copperkettle", "Greenwold",
    "Saltmarsh", "Highmeadow", "Elmstead", "Brightwater", "Thistledown",
)
#: Department -> (descriptors, varieties) of invented product names.
_DEPARTMENT_WORDS = {
    "frozen": ("Classic|Homestyle|Crispy|Family Size|Single Serve|Lightly Breaded|Fire Roasted|"
               "Golden|Hearty|Rustic",
               "Chicken|Four Cheese|Vegetable|Beef|Mushroom|Spinach|Teriyaki|Mango|Vanilla Bean|"
               "Sweet Potato|Cauliflower|Mixed Berry"),
    "other": ("Assorted|Everyday|Seasonal|Gift|Travel|Mini|Deluxe|Classic|Party|Value",
              "Holiday|Garden|Picnic|Festive|Original|Sampler|Variety|Essentials|Starter|Combo|"
              "Weekend|Home"),
    "bakery": ("Artisan|Stone Baked|Soft|Rustic|Golden|Seeded|Sliced|Classic|Hearty|Fresh Baked",
               "Sourdough|Whole Wheat|Multigrain|Rye|Brioche|Cinnamon|Blueberry|Honey Oat|"
               "Pumpernickel|Butter|Ciabatta|Sesame"),
    "produce": ("Fresh|Sweet|Crisp|Vine Ripened|Hand Picked|Baby|Heirloom|Petite|Premium|"
                "Farm Fresh",
                "Red|Golden|Green|Purple|Rainbow|Honey|Seedless|Mini|White|Yellow|Sunrise|Valley"),
    "alcohol": ("Reserve|Small Batch|Estate|Crisp|Bold|Smooth|Barrel Aged|Classic|Vintage|Dry",
                "Amber|Citrus|Hazy|Oak|Berry|Black Cherry|Golden|Hop|Pale|Coastal|Valley|Mountain"),
    "international": ("Authentic|Traditional|Homestyle|Spicy|Mild|Classic|Street Style|"
                      "Fragrant|Bold|Zesty",
                      "Coconut|Chipotle|Sesame|Tamarind|Lime|Garlic|Ginger|Cilantro|Mango|Chili|"
                      "Saffron|Black Bean"),
    "beverages": ("Sparkling|Pure|Cold Brewed|Refreshing|Lightly Sweetened|Unsweetened|Classic|"
                  "Zero Sugar|Bold|Smooth",
                  "Lemon|Lime|Raspberry|Peach|Mango|Ginger|Berry|Vanilla|Hibiscus|Cucumber Mint|"
                  "Grapefruit|Black Cherry"),
    "pets": ("Grain Free|Healthy Weight|Indoor|Senior|Puppy|Kitten|Classic|Premium|Natural|"
             "Gourmet",
             "Chicken|Salmon|Turkey|Beef|Lamb|Ocean Fish|Duck|Liver|Tuna|Sweet Potato|Venison|"
             "Rabbit"),
    "dry goods pasta": ("Classic|Whole Grain|Quick Cook|Traditional|Artisan|Bronze Cut|Hearty|"
                        "Family Size|Instant|Rustic",
                        "Tomato Basil|Garlic|Four Cheese|Marinara|Spinach|Wild Mushroom|Jasmine|"
                        "Basmati|Brown|Roasted Pepper|Pesto|Lemon Herb"),
    "bulk": ("Bulk|Natural|Raw|Unsalted|Dried|Whole|Sun Dried|Premium|Select|Loose",
             "Apricot|Mango|Quinoa|Lentil|Barley|Cranberry|Date|Fig|Chickpea|Millet|Farro|"
             "Pineapple"),
    "personal care": ("Gentle|Sensitive|Daily|Extra Strength|Soothing|Fresh|Hydrating|Clinical|"
                      "Natural|Travel Size",
                      "Lavender|Eucalyptus|Coconut|Aloe|Tea Tree|Unscented|Citrus|Mint|Oatmeal|"
                      "Rose|Charcoal|Shea"),
    "meat seafood": ("Boneless|Thick Cut|Lean|Smoked|Marinated|Free Range|Grass Fed|Wild Caught|"
                     "Seasoned|Hickory",
                     "Applewood|Peppercorn|Lemon Pepper|Herb|Maple|Garlic|Teriyaki|Mesquite|"
                     "Cajun|Italian|Chipotle|Honey"),
    "pantry": ("Classic|Pure|Stone Ground|Extra Virgin|Smoky|Tangy|Sweet|Spicy|Cold Pressed|"
               "Old Fashioned",
               "Garlic|Honey|Chipotle|Balsamic|Dijon|Maple|Sesame|Lemon|Rosemary|Jalapeno|"
               "Smoked Paprika|Vanilla"),
    "breakfast": ("Crunchy|Hearty|Whole Grain|Toasted|Lightly Sweetened|Classic|Protein|"
                  "Honey Roasted|Old Fashioned|Ancient Grain",
                  "Almond|Cinnamon|Blueberry|Maple|Pecan|Chocolate Chip|Coconut|Banana Nut|"
                  "Vanilla|Cranberry|Apple|Peanut Butter"),
    "canned goods": ("Hearty|Classic|Low Sodium|Chunky|Homestyle|Reduced Fat|Fire Roasted|"
                     "Slow Cooked|No Salt Added|Country",
                     "Chicken|Tomato|Black Bean|Lentil|Vegetable|Beef|Sweet Corn|Pinto|"
                     "Minestrone|Peach|Pear|Garden"),
    "dairy eggs": ("Creamy|Fresh|Whole|Reduced Fat|Grass Fed|Pasture Raised|Cultured|Aged|"
                   "Smooth|Rich",
                   "Vanilla|Strawberry|Plain|Honey|Blueberry|Sharp|Mild|Salted|Unsalted|Peach|"
                   "Lemon|Chive"),
    "household": ("Ultra|Heavy Duty|Everyday|Gentle|Fresh|Extra Strength|Compact|Value Pack|Eco|"
                  "Multi Surface",
                  "Lavender|Lemon|Citrus|Unscented|Ocean Breeze|Linen|Mountain Air|Eucalyptus|"
                  "Grapefruit|Mint|Cedar|Spring Rain"),
    "babies": ("Gentle|Sensitive|Stage 1|Stage 2|Stage 3|Toddler|Tear Free|Soft|Hypoallergenic|"
               "Newborn",
               "Apple|Pear|Banana|Sweet Potato|Carrot|Pea|Oatmeal|Mango|Unscented|Chamomile|"
               "Blueberry|Squash"),
    "snacks": ("Crunchy|Kettle Cooked|Lightly Salted|Sea Salt|Baked|Chewy|Crispy|Roasted|Zesty|"
               "Classic",
               "Cheddar|Sour Cream Onion|Barbecue|Honey Mustard|Chocolate|Peanut Butter|Almond|"
               "Cinnamon|Jalapeno|Caramel|Rosemary|Cranberry"),
    "deli": ("Fresh|Homestyle|Oven Roasted|Smoked|Classic|Garden|Mediterranean|Hearty|"
             "Thin Sliced|Chef's",
             "Turkey|Chicken|Roasted Red Pepper|Garlic|Lemon|Pesto|Black Pepper|Honey|Caesar|"
             "Quinoa|Ham|Spinach"),
    "missing": ("Assorted|Mixed|Variety|Specialty|Seasonal|Limited Edition|Sampler|Select|"
                "Classic|Favorite",
                "Original|Mixed Berry|Honey|Sea Salt|Vanilla|Garden|Harvest|Sunrise|Citrus|"
                "Golden|Fiesta|Country"),
}
#: Aisle -> what its products are called (last word(s) of an invented name).
_AISLE_NOUNS = {
    "prepared soups salads": "Soup Cup|Grain Salad|Chopped Salad|Bisque",
    "specialty cheeses": "Cheese Wedge|Brie Round|Goat Cheese Log|Cave Aged Gouda",
    "energy granola bars": "Granola Bars|Energy Bites|Chewy Bars|Nut Bars",
    "instant foods": "Ramen Cup|Mac Cups|Instant Noodle Bowl|Quick Oat Pack",
    "marinades meat preparation": "Marinade|Meat Rub|Brine Mix|Grilling Glaze",
    "other": "Gift Set|Party Pack|Travel Kit|Sampler Box",
    "packaged meat": "Beef Strips|Pork Loin Pack|Meatballs|Ground Beef Pack",
    "bakery desserts": "Layer Cake|Cupcakes|Fruit Tart|Brownie Tray",
    "pasta sauce": "Pasta Sauce|Simmer Sauce|Alfredo Sauce|Vodka Sauce",
    "kitchen supplies": "Sponges|Kitchen Towels|Scrub Brush|Oven Mitt",
    "cold flu allergy": "Cold Relief Caplets|Allergy Tablets|Cough Drops|Sinus Spray",
    "fresh pasta": "Ravioli|Tortellini|Fettuccine Nest|Gnocchi",
    "fresh dips tapenades": "Hummus|Guacamole|Tzatziki|Salsa Fresca",
    "prepared meals": "Meal Kit|Grain Bowl|Entree Tray|Burrito Bowl",
    "tofu meat alternatives": "Tofu Block|Tempeh|Plant Burger|Seitan Strips",
    "packaged seafood": "Salmon Fillets|Shrimp Pack|Cod Portions|Smoked Trout",
    "fresh herbs": "Basil Bunch|Cilantro Bunch|Mint Sprigs|Parsley Bunch",
    "baking ingredients": "Baking Flour|Cane Sugar|Baking Soda|Chocolate Chips",
    "bulk dried fruits vegetables": "Dried Fruit Scoop|Dried Veggie Mix|Fruit Pieces",
    "oils vinegars": "Olive Oil|Wine Vinegar|Avocado Oil|Cooking Spray",
    "oral hygiene": "Toothpaste|Toothbrush|Mouthwash|Dental Floss",
    "packaged cheese": "Shredded Cheese|Cheese Slices|Cheese Sticks|Cheese Block",
    "hair care": "Shampoo|Conditioner|Hair Mask|Styling Gel",
    "popcorn jerky": "Popcorn|Beef Jerky|Turkey Jerky|Kettle Corn",
    "fresh fruits": "Apples|Pears|Grapes|Plums|Mangoes|Nectarines",
    "soap": "Bar Soap|Hand Soap|Foaming Hand Wash|Soap Refill",
    "coffee": "Ground Coffee|Whole Bean Coffee|Coffee Pods|Cold Brew Concentrate",
    "beers coolers": "Lager|India Pale Ale|Hard Seltzer|Wheat Ale",
    "red wines": "Cabernet|Pinot Noir|Merlot|Red Blend",
    "honeys syrups nectars": "Honey Jar|Maple Syrup|Agave Nectar|Pancake Syrup",
    "latino foods": "Salsa Verde|Refried Beans|Taco Shells|Enchilada Sauce",
    "refrigerated": "Iced Coffee|Kombucha|Cold Pressed Juice|Oat Latte",
    "packaged produce": "Salad Kit|Cut Fruit Cup|Veggie Tray|Spiralized Zucchini",
    "kosher foods": "Matzo Crackers|Gefilte Fish|Kosher Pickles|Challah Mix",
    "frozen meat seafood": "Frozen Shrimp|Frozen Fish Fillets|Frozen Chicken Breasts|"
                           "Frozen Burger Patties",
    "poultry counter": "Whole Chicken|Chicken Thighs|Turkey Breast|Chicken Wings",
    "butter": "Butter Sticks|Whipped Butter|Cultured Butter|Ghee",
    "ice cream ice": "Ice Cream Pint|Ice Cream Bars|Gelato|Ice Cubes",
    "frozen meals": "Frozen Entree|Frozen Bowl|Frozen Lasagna|Frozen Pot Pie",
    "seafood counter": "Fresh Salmon|Sea Scallops|Tuna Steak|Halibut Fillet",
    "dog food care": "Dry Dog Food|Dog Treats|Wet Dog Food|Dog Chews",
    "cat food care": "Dry Cat Food|Cat Treats|Wet Cat Food|Cat Litter",
    "frozen vegan vegetarian": "Veggie Burgers|Plant Nuggets|Falafel Bites|Veggie Crumbles",
    "buns rolls": "Dinner Rolls|Hamburger Buns|Hot Dog Buns|Slider Buns",
    "eye ear care": "Eye Drops|Contact Solution|Ear Drops|Eye Wash",
    "candy chocolate": "Chocolate Bar|Gummy Bears|Truffles|Peanut Butter Cups",
    "mint gum": "Chewing Gum|Breath Mints|Gum Pack|Mint Tin",
    "vitamins supplements": "Multivitamin|Vitamin Gummies|Fish Oil Softgels|Probiotic Capsules",
    "breakfast bars pastries": "Toaster Pastries|Breakfast Bars|Soft Baked Bars|Oat Squares",
    "packaged poultry": "Chicken Breast Pack|Ground Turkey|Chicken Tenders|Turkey Meatballs",
    "fruit vegetable snacks": "Fruit Snacks|Apple Chips|Veggie Straws|Fruit Leather",
    "preserved dips spreads": "Bean Dip|Olive Tapenade|Fig Spread|Queso Dip",
    "frozen breakfast": "Frozen Waffles|Breakfast Sandwiches|Frozen Pancakes|Breakfast Burritos",
    "cream": "Heavy Cream|Half and Half|Coffee Creamer|Whipping Cream",
    "paper goods": "Paper Towels|Toilet Paper|Facial Tissues|Paper Napkins",
    "shave needs": "Shave Cream|Razors|Aftershave Balm|Razor Cartridges",
    "diapers wipes": "Diapers|Baby Wipes|Training Pants|Overnight Diapers",
    "granola": "Granola|Granola Clusters|Muesli|Grain Free Granola",
    "frozen breads doughs": "Frozen Pizza Dough|Frozen Garlic Bread|Puff Pastry|Frozen Biscuits",
    "canned meals beans": "Canned Beans|Baked Beans|Canned Chili|Canned Ravioli",
    "trash bags liners": "Trash Bags|Kitchen Bags|Recycling Bags|Compost Bags",
    "cookies cakes": "Cookies|Sandwich Cookies|Snack Cakes|Shortbread",
    "white wines": "Chardonnay|Sauvignon Blanc|Pinot Grigio|Riesling",
    "grains rice dried goods": "Long Grain Rice|Quinoa Pack|Couscous|Dried Lentils",
    "energy sports drinks": "Sports Drink|Energy Drink|Electrolyte Water|Energy Shot",
    "protein meal replacements": "Protein Powder|Protein Shake|Meal Replacement Bars|"
                                 "Protein Bars",
    "asian foods": "Soy Sauce|Rice Noodles|Curry Paste|Stir Fry Sauce",
    "bulk grains rice dried goods": "Bulk Rice|Bulk Oats|Bulk Beans|Bulk Grains",
    "soup broth bouillon": "Bone Broth|Vegetable Stock|Bouillon Cubes|Condensed Soup",
    "digestion": "Antacid Tablets|Fiber Supplement|Digestive Enzymes|Stomach Relief",
    "refrigerated pudding desserts": "Pudding Cups|Gelatin Cups|Rice Pudding|Custard",
    "condiments": "Ketchup|Mustard|Mayonnaise|Hot Sauce",
    "facial care": "Face Wash|Face Moisturizer|Facial Toner|Face Mask",
    "dish detergents": "Dish Soap|Dishwasher Pods|Dishwasher Detergent|Rinse Aid",
    "laundry": "Laundry Detergent|Fabric Softener|Dryer Sheets|Stain Remover",
    "indian foods": "Tikka Masala Sauce|Naan|Basmati Pilaf|Chutney",
    "soft drinks": "Cola|Lemon Lime Soda|Root Beer|Ginger Ale",
    "crackers": "Crackers|Rice Crackers|Water Crackers|Crispbread",
    "frozen pizza": "Frozen Pizza|Flatbread Pizza|Pizza Rolls|Thin Crust Pizza",
    "deodorants": "Deodorant|Antiperspirant|Deodorant Spray|Body Spray",
    "canned jarred vegetables": "Canned Corn|Diced Tomatoes|Green Beans|Jarred Roasted Peppers",
    "baby accessories": "Baby Bottles|Pacifiers|Sippy Cups|Teething Rings",
    "fresh vegetables": "Carrots|Broccoli Crowns|Bell Peppers|Zucchini|Cucumbers|Kale Bunch",
    "milk": "Milk Gallon|Milk Half Gallon|Chocolate Milk|Lactose Free Milk",
    "food storage": "Storage Bags|Plastic Wrap|Aluminum Foil|Food Containers",
    "eggs": "Large Eggs|Brown Eggs|Egg Whites|Jumbo Eggs",
    "more household": "Light Bulbs|Batteries|Matches|Lint Roller",
    "spreads": "Peanut Butter|Almond Butter|Fruit Preserves|Hazelnut Spread",
    "salad dressing toppings": "Salad Dressing|Croutons|Vinaigrette|Salad Toppers",
    "cocoa drink mixes": "Hot Cocoa Mix|Drink Mix|Malted Milk Powder|Chai Mix",
    "soy lactosefree": "Almond Milk|Oat Milk|Soy Milk|Coconut Milk",
    "baby food formula": "Baby Food Pouch|Infant Formula|Baby Cereal|Toddler Puffs",
    "breakfast bakery": "Bagels|Muffins|English Muffins|Croissants",
    "tea": "Tea Bags|Loose Leaf Tea|Herbal Infusion|Iced Tea Bags",
    "canned meat seafood": "Canned Tuna|Canned Salmon|Canned Chicken|Sardines",
    "lunch meat": "Sliced Turkey|Sliced Ham|Salami|Roast Beef Slices",
    "baking supplies decor": "Sprinkles|Cupcake Liners|Food Coloring|Cake Decorating Kit",
    "juice nectars": "Orange Juice|Apple Juice|Juice Boxes|Lemonade",
    "canned fruit applesauce": "Applesauce Cups|Canned Peaches|Fruit Cups|Mandarin Oranges",
    "missing": "Assortment|Variety Box|Multipack|Bundle",
    "air fresheners candles": "Scented Candle|Air Freshener|Reed Diffuser|Room Spray",
    "baby bath body care": "Baby Wash|Baby Lotion|Diaper Cream|Baby Shampoo",
    "ice cream toppings": "Chocolate Syrup|Caramel Sauce|Whipped Topping|Sundae Sprinkles",
    "spices seasonings": "Seasoning Blend|Ground Cinnamon|Sea Salt Grinder|Peppercorns",
    "doughs gelatins bake mixes": "Cake Mix|Brownie Mix|Gelatin Dessert|Pie Crust",
    "hot dogs bacon sausage": "Hot Dogs|Bacon|Breakfast Sausage|Chicken Sausage",
    "chips pretzels": "Potato Chips|Tortilla Chips|Pretzel Twists|Pita Chips",
    "other creams cheeses": "Cream Cheese|Sour Cream|Cottage Cheese|Ricotta",
    "skin care": "Body Lotion|Hand Cream|Sunscreen|Lip Balm",
    "pickled goods olives": "Dill Pickles|Kalamata Olives|Pickled Onions|Capers",
    "plates bowls cups flatware": "Paper Plates|Plastic Cups|Disposable Bowls|Plastic Forks",
    "bread": "Sandwich Bread|Loaf|Sliced Bread|Bread Round",
    "frozen juice": "Frozen Juice Concentrate|Frozen Lemonade|Frozen Limeade",
    "cleaning products": "All Purpose Cleaner|Glass Cleaner|Disinfecting Wipes|Bathroom Cleaner",
    "water seltzer sparkling water": "Sparkling Water|Spring Water|Seltzer|Mineral Water",
    "frozen produce": "Frozen Berries|Frozen Peas|Frozen Broccoli|Frozen Mixed Vegetables",
    "nuts seeds dried fruit": "Roasted Almonds|Cashews|Sunflower Seeds|Dried Cranberries",
    "first aid": "Bandages|Antiseptic Cream|Gauze Pads|First Aid Tape",
    "frozen dessert": "Frozen Pie|Sorbet|Frozen Yogurt Bars|Frozen Cheesecake",
    "yogurt": "Greek Yogurt|Yogurt Cups|Drinkable Yogurt|Skyr",
    "cereal": "Cereal|Corn Flakes|Oat Rings|Bran Flakes",
    "meat counter": "Ribeye Steak|Pork Chops|Ground Chuck|Lamb Chops",
    "packaged vegetables fruits": "Baby Carrots|Spinach Bag|Spring Mix|Berry Clamshell",
    "spirits": "Vodka|Bourbon|Gin|Tequila",
    "trail mix snack mix": "Trail Mix|Snack Mix|Nut Clusters|Party Mix",
    "feminine care": "Tampons|Pads|Panty Liners|Menstrual Cup",
    "body lotions soap": "Body Wash|Shower Gel|Body Butter|Bath Bomb",
    "tortillas flat bread": "Flour Tortillas|Corn Tortillas|Pita Bread|Wraps",
    "frozen appetizers sides": "Frozen Fries|Mozzarella Sticks|Egg Rolls|Onion Rings",
    "hot cereal pancake mixes": "Oatmeal|Pancake Mix|Grits|Waffle Mix",
    "dry pasta": "Spaghetti|Penne|Rotini|Elbow Macaroni",
    "beauty": "Nail Polish|Makeup Remover|Mascara|Cotton Rounds",
    "muscles joints pain relief": "Pain Reliever|Muscle Rub|Joint Supplement|Heat Patches",
    "specialty wines champagnes": "Champagne|Prosecco|Rose|Dessert Wine",
}

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


_PERSONAS = (
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
assert tuple(p.name for p in _PERSONAS) == PERSONA_NAMES


@dataclass(frozen=True)
class _Separation:
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


_SEPARATIONS = {
    "strong": _Separation(
        aisle_contrast=2.5, organic_contrast=1.0, hour_contrast=2.0, weekend_contrast=1.5,
        cadence_contrast=1.0, own_taste_share=0.97, own_taste_concentration=200.0,
        basket_persistence=0.8, hour_persistence=0.7, cadence_persistence_scale=1.0,
        own_baskets_and_cadence=True,
    ),
    "realistic": _Separation(
        aisle_contrast=0.6, organic_contrast=0.5, hour_contrast=0.5, weekend_contrast=0.4,
        cadence_contrast=0.4, own_taste_share=0.5, own_taste_concentration=6.0,
        basket_persistence=0.6, hour_persistence=0.5, cadence_persistence_scale=0.8,
        own_baskets_and_cadence=False,
    ),
}

#: Days over which a realistic persona's preference for its cadence fades (capped at 2 widths).
_CADENCE_TILT_WIDTH = 7.0
#: Favourites' weight in a repertoire falls as (1 - rank / size) ** this.
_REPERTOIRE_SKEW = 0.5
#: The most a basket may take from the repertoire, in multiples of what the user's usual
#: basket takes (this sets the repertoire's size).
_REPERTOIRE_BREADTH = 1.6
#: Concentration (a + b) of each user's repertoire share around their persona's.
_REPERTOIRE_SHARE_CONCENTRATION = 30.0


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
    """
    _validate(n_users, seed, separation)
    market = _market(separation)
    catalog_rng, user_rng, order_rng, item_rng = (
        np.random.default_rng(stream) for stream in np.random.SeedSequence(seed).spawn(4))
    catalog = _build_catalog(catalog_rng)
    users = _draw_users(n_users, market, catalog, user_rng)
    orders = _draw_orders(users, market, order_rng)
    items = _draw_items(users, orders, market, catalog, item_rng)
    return _assemble(users, orders, items, catalog, seed, separation)


def write_instacart(synth: SyntheticInstacart, out_dir: str | os.PathLike[str], *,
                    fmt: str = "csv", overwrite: bool = False) -> Path:
    """Write the Kaggle folder layout plus ``personas_truth.csv``, atomically.

    The files are written into a temporary folder beside ``out_dir`` that is
    renamed into place at the end, so a reader never sees half a data set.

    Parameters
    ----------
    synth : SyntheticInstacart
    out_dir : path
        Folder to create (its parent is created if missing).
    fmt : {"csv", "parquet"}
        Format of the six tables; the truth file is always CSV.
    overwrite : bool
        Replace an existing ``out_dir``; otherwise an existing one is refused.

    Returns
    -------
    Path
        The written folder.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    target = Path(out_dir)
    if target.exists() and not overwrite:
        raise ConfigError(
            f"out_dir {str(target)!r} already exists; overwrite=True (CLI: --force) replaces it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                    dir=target.parent))
    try:
        for name, frame in synth.tables().items():
            _write_table(frame, staging / f"{FILE_STEMS[name]}.{fmt}", fmt)
        synth.truth.to_csv(staging / TRUTH_FILE, index=False)
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# ---------------------------------------------------------------------------------------------
# Validation and writing
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


def _write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        # pyarrow writes tens of millions of rows far faster than DataFrame.to_csv, and
        # writes NaN (null) as an empty field like the Kaggle files do.
        # Unquoted like the Kaggle files; generated values never hold a comma or quote,
        # and pyarrow raises rather than write an ambiguous field if one ever does. The
        # header is written here because pyarrow < 18 always quotes column names.
        with open(path, "wb") as sink:
            sink.write((",".join(frame.columns) + "\n").encode())
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False,
                                                              quoting_style="none"))


def _replace_folder(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Calibrated market: per-persona distributions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Market:
    """Every persona's distributions for one separation level (rows follow ``_PERSONAS``)."""

    separation: _Separation
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


def _cdf(pmfs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(pmfs, axis=-1)
    cdf[..., -1] = 1.0
    return cdf


@functools.lru_cache(maxsize=None)
def _market(separation_name: str) -> _Market:
    sep = _SEPARATIONS[separation_name]
    share = np.array([p.share for p in _PERSONAS])
    basket = _basket_pmfs(sep, share)
    mean_basket = basket @ np.arange(1, MAX_BASKET + 1)
    item_share = _normalised(share * mean_basket)
    return _Market(
        separation=sep,
        persona_share=share,
        hour_cdf=_cdf(_hour_pmfs(sep, share)),
        dow_cdf=_cdf(_dow_pmfs(sep, share)),
        gap_cdf=_cdf(_gap_pmfs(sep, share)),
        basket_cdf=_cdf(basket),
        aisle_cdf=_cdf(_aisle_pmfs(sep, item_share)),
        organic_probability=_organic_probability(sep),
        item_share=item_share,
        cadence_persistence=np.array([p.cadence_persistence for p in _PERSONAS])
        * sep.cadence_persistence_scale,
        repertoire_share=np.array([p.repertoire_share[separation_name] for p in _PERSONAS]),
    )


def _published_basket_pmf() -> np.ndarray:
    tail = BASKET_HISTOGRAM_1_35[-1] * BASKET_TAIL_RATIO ** np.arange(1, MAX_BASKET - 34)
    return _normalised(np.concatenate([BASKET_HISTOGRAM_1_35, tail]))


def _discretised_lognormal(median: float, spread: float, support: np.ndarray) -> np.ndarray:
    return _normalised(np.exp(-0.5 * (np.log(support / median) / spread) ** 2) / support)


def _basket_pmfs(sep: _Separation, share: np.ndarray) -> np.ndarray:
    sizes = np.arange(1, MAX_BASKET + 1, dtype=np.float64)
    if sep.own_baskets_and_cadence:
        return np.stack([_discretised_lognormal(p.basket_median, p.basket_spread, sizes)
                         for p in _PERSONAS])
    tilts = np.stack([sizes ** p.basket_tilt for p in _PERSONAS])
    return _calibrated_pmfs(_published_basket_pmf(), tilts, share)


def _gap_pmfs(sep: _Separation, share: np.ndarray) -> np.ndarray:
    days = np.arange(31, dtype=np.float64)
    if sep.own_baskets_and_cadence:
        return np.stack([_capped_normal(p.cadence_days, p.cadence_spread) for p in _PERSONAS])
    distance = np.stack([(days - p.cadence_days) / _CADENCE_TILT_WIDTH for p in _PERSONAS])
    tilts = np.exp(-sep.cadence_contrast * np.minimum(distance ** 2, 4.0))
    return _calibrated_pmfs(np.array(DAYS_SINCE_PRIOR_COUNTS), tilts, share)


def _capped_normal(mean: float, spread: float) -> np.ndarray:
    """Whole days 0..30 around ``mean``; everything beyond 30 lands on 30, as in Instacart."""
    edges = (np.arange(32) - 0.5 - mean) / spread
    mass = np.diff(ndtr(edges))
    mass[-1] += 1.0 - ndtr(edges[-1])
    mass[0] += ndtr(edges[0])
    return _normalised(mass)


def _hour_pmfs(sep: _Separation, share: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * np.arange(24) / 24
    tilts = np.stack([np.exp(sep.hour_contrast * np.cos(angle - 2 * np.pi * p.peak_hour / 24))
                      for p in _PERSONAS])
    return _calibrated_pmfs(np.array(HOUR_COUNTS), tilts, share)


def _dow_pmfs(sep: _Separation, share: np.ndarray) -> np.ndarray:
    weekend = np.isin(np.arange(7), (0, 1))
    affinity = np.array([p.weekend_affinity for p in _PERSONAS])
    tilts = np.exp(sep.weekend_contrast * affinity[:, None] * weekend[None, :])
    return _calibrated_pmfs(np.array(DOW_COUNTS), tilts, share)


def _published_aisle_pmf() -> np.ndarray:
    department = taxonomy.department_of_aisle()
    weights = np.array([_AISLE_WEIGHTS[name] for name, _ in taxonomy.AISLES], dtype=np.float64)
    department_rows = np.array([DEPARTMENT_ROWS[name] for name in taxonomy.DEPARTMENTS])
    department_weight = np.bincount(department, weights=weights, minlength=taxonomy.N_DEPARTMENTS)
    return _normalised(weights / department_weight[department] * department_rows[department])


def _aisle_pmfs(sep: _Separation, item_share: np.ndarray) -> np.ndarray:
    target = _published_aisle_pmf()
    tilts = []
    for persona in _PERSONAS:
        affinity = np.zeros(taxonomy.N_AISLES)
        affinity[[taxonomy.aisle_index(a) for a in persona.favourite_aisles]] = 1.0
        affinity[[taxonomy.aisle_index(a) for a in persona.avoided_aisles]] = -1.0
        rarity = np.log(target.max() / target)
        tilts.append(np.exp(sep.aisle_contrast * (affinity + persona.aisle_flattening * rarity)))
    return _calibrated_pmfs(target, np.stack(tilts), item_share)


def _organic_probability(sep: _Separation) -> np.ndarray:
    """Probability that a persona's draw in an aisle is an organic product (persona x aisle)."""
    share = _aisle_organic_share()
    base_odds = _ORGANIC_PURCHASE_ODDS * share / (1.0 - share)
    persona_odds = np.array([p.organic_odds for p in _PERSONAS]) ** sep.organic_contrast
    odds = persona_odds[:, None] * base_odds[None, :]
    return odds / (1.0 + odds)


# ---------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalog:
    """Products laid out in blocks by (aisle, organic), most popular first in each block.

    ``position`` indexes this layout; ``product_id`` is a random relabelling of it.
    """

    products: pd.DataFrame
    block_start: np.ndarray  # (aisle, organic) -> first position
    block_size: np.ndarray
    product_id_of_position: np.ndarray


def _aisle_product_counts() -> np.ndarray:
    """Products per aisle: more in popular aisles, sub-linearly, at least 12, 49,688 in all."""
    weights = np.sqrt(_published_aisle_pmf())
    return _largest_remainder(weights, N_PRODUCTS, minimum=12)


def _aisle_organic_counts() -> np.ndarray:
    department = taxonomy.department_of_aisle()
    raw = np.array([_DEPARTMENT_ORGANIC_SHARE[name] for name in taxonomy.DEPARTMENTS])[department]
    counts = _aisle_product_counts()
    scaled = raw * counts * (_ORGANIC_PRODUCT_SHARE * N_PRODUCTS / (raw * counts).sum())
    return np.minimum(np.rint(scaled).astype(np.int64), counts // 2)


def _aisle_organic_share() -> np.ndarray:
    return _aisle_organic_counts() / _aisle_product_counts()


def _largest_remainder(weights: np.ndarray, total: int, *, minimum: int = 0) -> np.ndarray:
    """Whole numbers proportional to ``weights``, each >= ``minimum``, summing to ``total``."""
    spare = total - minimum * len(weights)
    exact = _normalised(weights) * spare
    counts = np.floor(exact).astype(np.int64)
    short = spare - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    return counts + minimum


def _build_catalog(rng: np.random.Generator) -> _Catalog:
    counts = _aisle_product_counts()
    organic = _aisle_organic_counts()
    block_size = np.stack([counts - organic, organic], axis=1)
    block_start = (np.cumsum(block_size.ravel()) - block_size.ravel()).reshape(block_size.shape)
    aisle_of_position = np.repeat(np.arange(taxonomy.N_AISLES), counts)
    names = _product_names(rng, block_size)
    product_id_of_position = (rng.permutation(N_PRODUCTS) + 1).astype(np.int32)
    order = np.argsort(product_id_of_position)
    department = taxonomy.department_of_aisle()
    products = pd.DataFrame({
        "product_id": product_id_of_position[order],
        "product_name": pd.array(names, dtype="str")[order],
        "aisle_id": aisle_of_position[order] + 1,
        "department_id": department[aisle_of_position[order]] + 1,
    }).astype(dict(PRODUCTS_DTYPES))
    return _Catalog(products, block_start, block_size, product_id_of_position)


def _product_names(rng: np.random.Generator, block_size: np.ndarray) -> list[str]:
    """Unique invented names: brand, [Organic], descriptor, variety, aisle noun."""
    names: list[str] = []
    for (aisle_name, department_id), sizes in zip(taxonomy.AISLES, block_size):
        descriptors, varieties = (w.split("|") for w in
                                  _DEPARTMENT_WORDS[taxonomy.DEPARTMENTS[department_id - 1]])
        nouns = _AISLE_NOUNS[aisle_name].split("|")
        shape = (len(_BRANDS), len(descriptors), len(varieties), len(nouns))
        picks = rng.choice(math.prod(shape), size=int(sizes.sum()), replace=False)
        for number, (b, d, v, n) in enumerate(zip(*np.unravel_index(picks, shape))):
            organic = "Organic " if number >= sizes[0] else ""
            names.append(f"{_BRANDS[b]} {organic}{descriptors[d]} {varieties[v]} {nouns[n]}")
    return names


def _sample_products(rng: np.random.Generator, taste: np.ndarray, market: _Market,
                     catalog: _Catalog) -> np.ndarray:
    """Catalog positions drawn with each draw's persona taste: aisle, organic or not, then rank."""
    aisle = _draw_categories(market.aisle_cdf, taste, rng.random(len(taste)))
    # Zero where an aisle has no organic product, so every drawn block is non-empty.
    organic = (rng.random(len(taste)) < market.organic_probability[taste, aisle]).astype(np.intp)
    size = catalog.block_size[aisle, organic]
    rank = (size * rng.random(len(taste)) ** _POPULARITY_SKEW).astype(np.int64)
    np.minimum(rank, size - 1, out=rank)
    return catalog.block_start[aisle, organic] + rank


def _draw_categories(cdfs: np.ndarray, group: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of each uniform from its group's distribution (one flat search)."""
    n_groups, n_categories = cdfs.shape
    table = (np.arange(n_groups)[:, None] + cdfs).ravel()
    position = np.searchsorted(table, group + uniforms, side="right")
    # group + u can round up to group + 1 in float64 when u is within 1e-16 of 1.
    return np.minimum(position - group * n_categories, n_categories - 1)


# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Users:
    persona: np.ndarray  # int64 index into _PERSONAS
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
    labels = np.repeat(np.arange(len(shares)), _largest_remainder(shares, n))
    return rng.permutation(labels)


def _draw_order_counts(rng: np.random.Generator, n_users: int) -> np.ndarray:
    weight, success = (np.array(column) for column in zip(*ORDER_COUNT_MIXTURE))
    component = np.searchsorted(np.cumsum(weight) / weight.sum(), rng.random(n_users), side="right")
    extra = rng.geometric(success[np.minimum(component, len(weight) - 1)]) - 1
    return np.minimum(MIN_ORDERS + extra, MAX_ORDERS).astype(np.int64)


def _beta_around(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


def _draw_users(n_users: int, market: _Market, catalog: _Catalog,
                rng: np.random.Generator) -> _Users:
    sep = market.separation
    persona = _exact_shares(rng, market.persona_share, n_users)
    n_orders = _draw_order_counts(rng, n_users)
    ends_in_train = _exact_shares(rng, np.array([1 - TRAIN_USER_SHARE, TRAIN_USER_SHARE]),
                                  n_users).astype(bool)
    basket_habit, hour_habit, cadence_habit = rng.standard_normal((3, n_users))
    own_taste_share = _beta_around(rng, np.full(n_users, sep.own_taste_share),
                                   sep.own_taste_concentration)
    repertoire_share = _beta_around(rng, market.repertoire_share[persona],
                                    _REPERTOIRE_SHARE_CONCENTRATION)
    usual_basket = 1 + _draw_categories(market.basket_cdf, persona,
                                        ndtr(sep.basket_persistence * basket_habit))
    # A basket takes at most size / (1 + skew) repertoire products (see _favourites); the
    # two extra products give even one-item shoppers favourites to come back to.
    repertoire_size = np.ceil(_REPERTOIRE_BREADTH * (1 + _REPERTOIRE_SKEW)
                              * repertoire_share * usual_basket).astype(np.int64) + 2
    repertoire_start = np.cumsum(repertoire_size) - repertoire_size
    owner = np.repeat(np.arange(n_users), repertoire_size)
    taste = _tastes(rng, persona[owner], own_taste_share[owner], market)
    repertoire = _sample_products(rng, taste, market, catalog)
    return _Users(persona, n_orders, ends_in_train, basket_habit, hour_habit, cadence_habit,
                  own_taste_share, repertoire_share, repertoire_start, repertoire_size, repertoire)


def _tastes(rng: np.random.Generator, persona: np.ndarray, own_share: np.ndarray,
            market: _Market) -> np.ndarray:
    """Whose tastes each draw follows: the user's persona, or the market as a whole."""
    market_taste = _draw_categories(_cdf(market.item_share)[None, :], np.zeros_like(persona),
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
    order_id: np.ndarray  # int32, a random relabelling of 1..n as in the Kaggle export
    by_order_id: np.ndarray  # dense order indices in ascending order_id


def _habit_uniforms(rng: np.random.Generator, habit: np.ndarray,
                    persistence: np.ndarray | float) -> np.ndarray:
    """Uniforms correlated within a user: persistence 1 repeats the habit, 0 ignores it."""
    persistence = np.asarray(persistence)
    noise = rng.standard_normal(len(habit))
    return ndtr(persistence * habit + np.sqrt(1.0 - persistence ** 2) * noise)


def _draw_orders(users: _Users, market: _Market, rng: np.random.Generator) -> _Orders:
    sep = market.separation
    owner = np.repeat(np.arange(len(users.persona), dtype=np.int32), users.n_orders)
    order_number = _ranks_within_groups(users.n_orders) + 1
    persona = users.persona[owner]
    is_last = order_number == users.n_orders[owner]
    eval_code = np.where(is_last, np.where(users.ends_in_train[owner], 1, 2), 0)
    dow = _draw_categories(market.dow_cdf, persona, rng.random(len(owner)))
    hour = _draw_categories(market.hour_cdf, persona,
                            _habit_uniforms(rng, users.hour_habit[owner], sep.hour_persistence))
    gap = _draw_categories(market.gap_cdf, persona,
                           _habit_uniforms(rng, users.cadence_habit[owner],
                                           market.cadence_persistence[persona]))
    days_since_prior = np.where(order_number == 1, np.nan, gap).astype(np.float32)
    basket = 1 + _draw_categories(market.basket_cdf, persona,
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


def _draw_items(users: _Users, orders: _Orders, market: _Market, catalog: _Catalog,
                rng: np.random.Generator) -> _Items:
    owner = orders.owner
    from_repertoire = np.minimum(
        np.floor(users.repertoire_share[owner] * orders.basket_size + rng.random(len(owner))),
        users.repertoire_size[owner] // (1 + _REPERTOIRE_SKEW),
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
    position[fresh] = _sample_products(rng, taste, market, catalog)
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
    np.power(quantile, 1.0 / (1.0 + _REPERTOIRE_SKEW), out=quantile)
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


def _assemble(users: _Users, orders: _Orders, items: _Items, catalog: _Catalog, seed: int,
              separation: str) -> SyntheticInstacart:
    orders_frame = pd.DataFrame({
        "order_id": orders.order_id,
        "user_id": (orders.owner + 1).astype(np.int32),
        "eval_set": pd.Categorical.from_codes(orders.eval_code, categories=list(EVAL_SETS)),
        "order_number": orders.order_number.astype(np.int16),
        "order_dow": orders.dow.astype(np.int8),
        "order_hour_of_day": orders.hour.astype(np.int8),
        "days_since_prior_order": orders.days_since_prior,
    })
    in_train = orders.eval_code[items.order] == 1
    truth = pd.DataFrame({
        "user_id": np.arange(1, len(users.persona) + 1, dtype=np.int32),
        "persona": pd.array(np.array(PERSONA_NAMES, dtype=object)[users.persona], dtype="str"),
    })
    return SyntheticInstacart(
        orders=orders_frame,
        order_products__prior=_product_rows(items, ~in_train, orders, catalog),
        order_products__train=_product_rows(items, in_train, orders, catalog),
        products=catalog.products,
        aisles=taxonomy.aisles_frame(),
        departments=taxonomy.departments_frame(),
        truth=truth,
        seed=int(seed),
        separation=separation,
    )


def _product_rows(items: _Items, selected: np.ndarray, orders: _Orders,
                  catalog: _Catalog) -> pd.DataFrame:
    columns = {
        "order_id": orders.order_id[items.order[selected]],
        "product_id": catalog.product_id_of_position[items.position[selected]],
        "add_to_cart_order": items.add_to_cart_order[selected],
        "reordered": items.reordered[selected],
    }
    assert all(columns[name].dtype == dtype for name, dtype in ORDER_PRODUCTS_DTYPES.items())
    return pd.DataFrame(columns, copy=False)
