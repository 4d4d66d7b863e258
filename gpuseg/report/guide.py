"""The report's reading aids: what to do with shoppers between personas, the action thresholds, a glossary.

Each function returns an HTML fragment built from plain data (the guidance
table from :func:`gpuseg.report.content.between_guidance`, the thresholds from
:func:`gpuseg.personas.thresholds`); every text is escaped.
"""
from __future__ import annotations

from collections.abc import Mapping
from html import escape

import pandas as pd

from ..cluster import BETWEEN_PERSONAS
from ..cluster.refits import DISSOLVES_BELOW
from ..personas import MATCH_THRESHOLD, MATERIAL_SHARE, MAX_ACTIONS, thresholds
from .html import table

#: Terms the report uses, each explained in a sentence or two.
GLOSSARY: tuple[tuple[str, str], ...] = (
    ("membership", "How sure the assignment of a shopper to their segment is (0-1), as the "
                   "section 'How sure is each assignment' measures it."),
    ("between personas", f"A membership below {BETWEEN_PERSONAS:g}: the shopper fits their own "
                         "segment only in part."),
    ("second segment", "The segment a shopper would most likely belong to after their own; the "
                       "customer lists give it for every shopper."),
    ("lift", "A segment's share of items in a department or aisle over the average shopper's "
             "share: 1.5x is half as much again, 0.5x half as much."),
    ("material", f"A department holding at least {MATERIAL_SHARE:.0%} of a segment's items: the "
                 "least a name or an action may rest on, so none rests on a high lift over a "
                 "small base."),
    ("SD (standardised difference)", "A segment's mean minus the average shopper's, in standard "
                                     "deviations of all shoppers' values: +1 SD is a large "
                                     "difference, 0.2 SD a small one."),
    ("signal, score", "A naming rule measures each trait on a common scale (1: clearly "
                      "distinctive, 0: like the average shopper, capped at 2 either way); a "
                      "persona's score is the weighted mean of its signals, and "
                      f"{MATCH_THRESHOLD:.2f} is needed for its name."),
    ("silhouette", "For one shopper, (b - a) / max(a, b), where a is the mean distance to the "
                   "shoppers of their own segment and b to those of the nearest other: near 1 "
                   "well inside, near 0 on a border, below 0 closer to another segment."),
    ("ARI (adjusted Rand index)", "How far two segmentations of the same shoppers agree, "
                                  "corrected for chance: 1 identical, 0 no better than random. "
                                  "Stability compares refits with other seeds or on resampled "
                                  "shoppers."),
    ("WCSS", "Within-cluster sum of squares: each shopper's squared distance to their segment's "
             "centre, summed; lower is tighter. Its reduction compares it with one segment for "
             "everyone."),
    ("elbow, elbow sharpness", "The K after which one more segment removes much less WCSS; the "
                               "sharpness is the WCSS the K-th segment removes over what each of "
                               "the next two removes."),
    ("Calinski-Harabasz, Davies-Bouldin", "Two indices of separation: the variance between "
                                          "segments over that within them (higher is better), "
                                          "and the mean worst ratio of a segment's spread to its "
                                          "distance from another (lower is better)."),
    ("eta squared", "The share of one feature's variance that lies between the segments (0-1): "
                    "how much the segments differ on it."),
    ("reproducibility", "How far a segment comes back when KMeans is refitted on resampled "
                        "shoppers: its Jaccard overlap with its best-matching refit segment "
                        "(shoppers in both over shoppers in either, 0-1), averaged over the "
                        f"refits; below {DISSOLVES_BELOW:g} it does not come back."),
    ("PCA", "Principal component analysis: the standardised features turned into uncorrelated "
            "directions that keep 95% of their variance; the segments are found there."),
    ("UMAP, trustworthiness", "A two-dimensional map that keeps shoppers who are close in the "
                              "PCA space close; trustworthiness (0-1) is how well the map's "
                              "neighbours are real neighbours."),
    ("fitted and placed shoppers", "On a large run the map's layout is fitted on a seeded "
                                   "sample; every other shopper is then placed onto it near their "
                                   "nearest fitted shoppers."),
    ("DBSCAN / HDBSCAN outliers", "Shoppers the density clustering leaves outside every group "
                                  "of close neighbours."),
    ("Ward", "Hierarchical clustering that merges the two groups whose union adds the least "
             "WCSS: a cross-check of the KMeans segments."),
    ("precision, coverage", "Of the shoppers a rule picks, the share in the segment (precision); "
                            "of the segment's shoppers, the share the rule picks (coverage)."),
    ("concentration on favourite products", "The Herfindahl-Hirschman index (HHI) of a shopper's "
                                            "purchases over products: the sum of squared product "
                                            "shares, near 0 when spread over many products, 1 "
                                            "for one product."),
    ("irregularity of days between orders", "The coefficient of variation (CV) of the days "
                                            "between a shopper's orders: their standard "
                                            "deviation over their mean."),
    ("department variety", "The entropy of a shopper's items over departments, scaled to 0-1."),
)


def glossary() -> str:
    """Every :data:`GLOSSARY` term as a definition list."""
    return ('<dl class="glossary">' + "".join(
        f"<dt>{escape(term)}</dt><dd>{escape(meaning)}</dd>" for term, meaning in GLOSSARY)
        + "</dl>")


def action_thresholds() -> str:
    """The facts that trigger actions and what each needs, folded under the personas' intro."""
    rows = [[fact, needs] for fact, needs in thresholds()]
    return ("<details><summary>When an action is triggered</summary>"
            "<p>Each action on a card names the fact of its segment that triggers it. A fact "
            "triggers only past its threshold, against the average shopper; a card shows at most "
            f"{MAX_ACTIONS} actions, strongest first (all are in metrics.json and profiles.csv), "
            "and a segment that no fact triggers gets no generic offer but what it is: its "
            "share of shoppers, orders and items.</p>"
            + table(["fact", "an action needs"], rows, text_columns=(0, 1)) + "</details>")


def new_shoppers(measured: pd.DataFrame | None, k: int) -> str:
    """How far a segment holds for a shopper with only a few orders, from this run's
    measurement (:func:`gpuseg.report.content.short_history_table`)."""
    if measured is None:
        return ""
    rows = [[f"first {row.orders}", f"{row.users:,}", f"{row.kept_segment:.0%}"]
            for row in measured.itertuples(index=False)]
    kept = " / ".join(f"{row.kept_segment:.0%}" for row in measured.itertuples(index=False))
    cuts = " / ".join(str(row.orders) for row in measured.itertuples(index=False))
    return ("<h3>Newer shoppers: how far a short history holds</h3>"
            "<p>This run measured it on its own shoppers: a seeded sample's histories were cut to "
            f"their first {cuts} orders and assigned with the run's model, as "
            "<code>gpuseg assign --min-orders</code> assigns a newer shopper. They landed in "
            f"their full-history segment {kept} of the time (one of {k} segments at random "
            f"would be about {1 / k:.0%}). Treat such a segment as provisional: use it for "
            "broad welcome offers, not for a segment's targeted actions, and assign the shopper "
            "again once they have placed the run's minimum number of orders.</p>"
            + table(["history", "shoppers measured", "in their full-history segment"], rows,
                    text_columns=(0,)))


def between_personas(guidance: pd.DataFrame, customer_lists: Mapping[int, str] | None) -> str:
    """What to do with shoppers between personas, with the numbers of this run.

    ``guidance`` is :func:`gpuseg.report.content.between_guidance`'s table.
    """
    lists = ("Each segment's customer list (linked from its card) gives every shopper's "
             "membership, whether they sit between personas, and their second segment with its "
             "persona. " if customer_lists else
             "segments.parquet gives every shopper's membership and second segment. ")
    rows = [[f"{row.segment}: {row.persona}", f"{row.between:,}", f"{row.between_share:.1%}",
             f"{row.second}: {row.second_persona}" if row.between else "",
             row.shared if row.between else ""]
            for row in guidance.itertuples(index=False)]
    return ("<h3>What to do with shoppers between personas</h3>"
            f"<p>{escape(lists)}Send a segment's actions first to its shoppers with the highest "
            "membership: they are the shoppers its profile describes. Shoppers between personas "
            f"(membership below {BETWEEN_PERSONAS:g}) fit their own segment's actions only in "
            "part: give them the actions their own and their second segment share (below), or "
            "broad campaigns where there are none; keep them out of a segment's test and control "
            "groups, where they blur its response; and assign them again with "
            "<code>gpuseg assign</code> after their next orders, since they are the shoppers most "
            "likely to move.</p>"
            + table(["segment", "between personas", "of the segment", "most common second segment",
                     "actions both segments get"], rows, text_columns=(0, 3, 4)))
