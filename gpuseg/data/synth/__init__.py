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
data set and marked so in :mod:`~gpuseg.data.synth.calibration`. A persona's
distribution over a variable is the target tilted by the persona and rescaled
by matrix scaling (Sinkhorn), so the persona mixture reproduces the target
exactly whatever the tilts.

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

The package
-----------
:mod:`~gpuseg.data.synth.personas` defines the personas and the separation
levels; :mod:`~gpuseg.data.synth.calibration` holds the published marginals
and calibrates every persona's distributions to them;
:mod:`~gpuseg.data.synth.names` invents the product names;
:mod:`~gpuseg.data.synth.generator` draws users, orders and product rows in
seeded blocks of users and assembles the tables; :mod:`~gpuseg.data.synth.writer`
writes them in the Kaggle layout, :mod:`~gpuseg.data.synth.out_of_core` in the
partitioned layout one block at a time.
"""
from __future__ import annotations

from .calibration import (
                          BASKET_HISTOGRAM_1_35,
                          BASKET_TAIL_RATIO,
                          DAYS_SINCE_PRIOR_COUNTS,
                          DEPARTMENT_ROWS,
                          DOW_COUNTS,
                          HOUR_COUNTS,
                          MAX_BASKET,
                          MAX_ORDERS,
                          MIN_ORDERS,
                          N_PRODUCTS,
                          ORDER_COUNT_MIXTURE,
                          TRAIN_USER_SHARE,
)
from .generator import (
                          BLOCK_USERS,
                          EVAL_SETS,
                          MAX_USERS,
                          SyntheticBlock,
                          SyntheticInstacart,
                          SyntheticPlan,
                          generate_block,
                          generate_instacart,
                          plan_instacart,
)
from .out_of_core import write_partitioned
from .personas import SEPARATIONS
from .writer import FORMATS, TRUTH_FILE, write_instacart

__all__ = ["BASKET_HISTOGRAM_1_35", "BASKET_TAIL_RATIO", "DAYS_SINCE_PRIOR_COUNTS",
           "DEPARTMENT_ROWS", "DOW_COUNTS", "EVAL_SETS", "FORMATS", "HOUR_COUNTS", "MAX_BASKET",
           "MAX_ORDERS", "MAX_USERS", "MIN_ORDERS", "N_PRODUCTS", "ORDER_COUNT_MIXTURE",
           "SEPARATIONS", "TRAIN_USER_SHARE", "TRUTH_FILE", "BLOCK_USERS", "SyntheticBlock",
           "SyntheticInstacart", "SyntheticPlan", "generate_block", "generate_instacart",
           "plan_instacart", "write_instacart", "write_partitioned"]
