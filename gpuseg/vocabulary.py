"""The market's persona vocabulary, shared by the synthetic generator and the naming rules."""
from __future__ import annotations

HEALTH_CONSCIOUS_REGULARS = "Health-Conscious Regulars"
BULK_PANTRY_STOCKERS = "Bulk Pantry Stockers"
BUSY_CONVENIENCE_SEEKERS = "Busy Convenience Seekers"
FAMILY_SHOPPERS = "Family Shoppers"
EXPLORATORY_FOODIES = "Exploratory Foodies"

#: The five personas of this market, in a fixed order.
PERSONA_NAMES = (
    HEALTH_CONSCIOUS_REGULARS,
    BULK_PANTRY_STOCKERS,
    BUSY_CONVENIENCE_SEEKERS,
    FAMILY_SHOPPERS,
    EXPLORATORY_FOODIES,
)
