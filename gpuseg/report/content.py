"""What the report shows, taken out of a :class:`~gpuseg.result.SegmentationResult`.

Each function turns one part of the result (its typed
:class:`~gpuseg.metrics.Metrics`, profiles and segments) into the plain table,
series or record a figure or an HTML section needs, so that the page and the
figures never reach into the metrics themselves.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..cluster import BETWEEN_PERSONAS, HdbscanFit
from ..cluster.certainty import SegmentReproducibility
from ..cluster.kchoice import RULE as KCHOICE_RULE
from ..cluster.refits import DISSOLVES_BELOW, REFIT_SHARE, WEAK_BELOW
from ..explain.importance import CLEAR_DROP
from ..explain.rules import SegmentRules
from ..feature_labels import feature_label as behaviour_label
from ..features import AISLE_COLUMN_PREFIX, aisle_id
from ..numerics.arrays import finite_or_none
from ..personas import Persona
from ..personas.actions import BASELINE
from ..result import SegmentationResult

#: Behavioural features on the radar, in drawing order, with their axis labels.
RADAR_FEATURES = {
    "n_orders": "orders",
    "basket_size_mean": "basket size",
    "days_between_mean": "days between",
    "order_interval_cv": "irregularity",
    "basket_consistency": "basket repeat",
    "reorder_ratio": "reorder rate",
    "product_repeat_rate": "product repeat",
    "loyalty_hhi": "loyalty",
    "organic_ratio": "organic",
    "dept_entropy": "dept. breadth",
    "weekend_ratio": "weekend",
}
#: The radar's radius spans this many population standard deviations either side of average.
RADAR_Z_LIMIT = 2.0


def persona_names(result: SegmentationResult) -> list[str]:
    """Persona name of each segment, by segment number."""
    return list(result.model.persona_names)


def segment_sizes(result: SegmentationResult) -> np.ndarray:
    """Users per segment, by segment number."""
    return result.profiles.sort_values("segment")["size"].to_numpy()


def density_method(result: SegmentationResult) -> str:
    """The density clustering that ran: ``"dbscan"`` or ``"hdbscan"`` (its metrics key and column)."""
    return result.metrics.density.method


#: Outlier share from which the report says that most shoppers form no dense group.
MOSTLY_OUTLIERS = 0.5


def density_label(result: SegmentationResult) -> str:
    return density_method(result).upper()


def density_note(result: SegmentationResult) -> str:
    """How the density clustering ran, in one sentence part (clusters, parameters, sampling)."""
    method = density_method(result)
    fit = result.metrics.density
    if isinstance(fit, HdbscanFit):
        note = (f"{fit.n_clusters} cluster(s) of varying density (min_cluster_size "
                f"{fit.min_cluster_size}, min_samples {fit.min_samples})")
        assignment = fit.assignment
    else:
        note = f"{fit.n_clusters} dense cluster(s), eps {fit.eps:.3g} ({fit.eps_source})"
        assignment = fit.core_assignment
    note += f"; {assignment}" if assignment else ""
    if fit.n_clusters == 0 or fit.outlier_share >= MOSTLY_OUTLIERS:
        note += (". Most shoppers sit in no dense group: they spread as one continuum in the PCA "
                 "space rather than as separate crowds, so the KMeans segments divide that "
                 "continuum (smaller " + ("min_cluster_size or min_samples" if method == "hdbscan"
                                          else "min_samples or a larger eps")
                 + " would look for smaller groups)")
    return note


def headline(result: SegmentationResult) -> dict[str, Any]:
    """The numbers at the top of the report (None where the run could not compute one)."""
    m = result.metrics
    silhouette, stability, kmeans = m.silhouette, m.stability, m.kmeans
    return {
        "users": m.users.segmented,
        "excluded": m.users.excluded_min_orders,
        "k": result.k,
        "k_reason": m.sweep.choice.reason,
        "silhouette": finite_or_none(silhouette.overall),
        "silhouette_scope": silhouette.to_dict()["scope"],
        "seed_ari": finite_or_none(stability.seed_ari_mean),
        "bootstrap_ari": finite_or_none(stability.bootstrap_ari_mean),
        # From the final fit over every user (the sweep ran on a sample and may not have fitted a --k).
        "wcss_reduction": kmeans.to_dict()["wcss_reduction"],
        "between_share": m.certainty.between_share,
        "between_threshold": BETWEEN_PERSONAS,
        "k_clear": m.sweep.choice.clear,
        "density_label": density_label(result),
        "density_outlier_share": m.density.outlier_share,
        "backend": result.backend,
        "device": result.device,
        "seconds_total": float(sum(result.timings.values())),
        "verdict": m.verdict.strength,
        "verdict_text": m.verdict.text,
        "source": m.input.source,
        "fingerprint": m.input.fingerprint,
        "gpuseg_version": m.gpuseg_version,
    }


def k_sweep_table(result: SegmentationResult) -> pd.DataFrame:
    """One row per swept K: ``k, wcss, silhouette, calinski_harabasz, davies_bouldin`` and,
    where the sweep measured it, ``elbow_sharpness``."""
    sweep = result.metrics.sweep.sweep.to_dict()
    table = pd.DataFrame({"k": sweep["ks"], "wcss": sweep["inertia"], "silhouette": sweep["silhouette"],
                          "calinski_harabasz": sweep["calinski_harabasz"],
                          "davies_bouldin": sweep["davies_bouldin"],
                          "elbow_sharpness": sweep["elbow_sharpness"]})
    # Indices undefined at some K are None; as NaN they leave a gap in the line.
    return table.astype(float).astype({"k": int})


def sweep_sizes(result: SegmentationResult) -> tuple[int, int]:
    """Shoppers the sweep's KMeans fits ran on, and those its three indices were scored on."""
    sweep = result.metrics.sweep.sweep
    return sweep.fit_size, sweep.sample_size


def elbow_k(result: SegmentationResult) -> int | None:
    return result.metrics.sweep.sweep.elbow_k


def k_rule(result: SegmentationResult) -> tuple[str | None, float | None]:
    """The K rule's text and its elbow-sharpness threshold (``None`` for a run without them)."""
    choice = result.metrics.sweep.choice
    return KCHOICE_RULE, choice.evidence.get("sharpness_threshold")


#: Membership bands of the report, with their labels: below the between-personas threshold,
#: up to 0.9, and 0.9 or more.
MEMBERSHIP_SURE = 0.9


def membership_table(result: SegmentationResult) -> pd.DataFrame:
    """Per segment: mean membership, the shares in each band, the segment it leans to, and how
    far it comes back on the refits (``reproducibility``, its ``verdict``).

    The mean is the run's own (``metrics.certainty``, over every user). ``leans_to`` is the
    most common second segment among the segment's users between personas (among all its
    users where none is).
    """
    segments = result.segments
    certainty = result.metrics.certainty
    between = BETWEEN_PERSONAS
    by_segment = segments.groupby("segment")
    rows = []
    for j, name in enumerate(persona_names(result)):
        # Every segment has users: the pipeline refuses a KMeans fit that leaves one empty.
        users = by_segment.get_group(j)
        comes_back = certainty.segments[j]
        membership = users["membership"].to_numpy(dtype=np.float64)
        unsure = users[users["membership"] < between]
        second = (unsure if len(unsure) else users)["second_segment"]
        rows.append({"segment": j, "persona": name, "users": len(users),
                     "mean": comes_back.mean_certainty,
                     "between": float(np.mean(membership < between)),
                     "leaning": float(np.mean((membership >= between)
                                              & (membership < MEMBERSHIP_SURE))),
                     "sure": float(np.mean(membership >= MEMBERSHIP_SURE)),
                     "leans_to": int(second.mode().iloc[0]),
                     "reproducibility": comes_back.reproducibility,
                     "verdict": comes_back.verdict})
    return pd.DataFrame(rows)


def segment_reproducibility(result: SegmentationResult) -> list[SegmentReproducibility]:
    """Per segment (by number): how far it comes back on the refits, and its verdict."""
    return list(result.metrics.certainty.segments)


def reliability_table(result: SegmentationResult) -> pd.DataFrame:
    """Per certainty bin: ``label``, ``users``, ``share``, ``mean_certainty`` and
    ``mean_agreement`` (the share of the refits that kept them in their segment)."""
    bins = result.metrics.certainty.reliability.bins
    return pd.DataFrame({
        "label": [f"{'[' if b.low == 0 else '('}{b.low:g}, {b.high:g}]" for b in bins],
        "users": [b.users for b in bins], "share": [b.share for b in bins],
        "mean_certainty": [b.mean_certainty for b in bins],
        "mean_agreement": [b.mean_agreement for b in bins]})


def certainty_facts(result: SegmentationResult) -> dict[str, Any]:
    """How the certainty was measured and whether it held: the refits, the users they held,
    the overall means and gap, and the checks."""
    certainty = result.metrics.certainty
    reliability = certainty.reliability
    return {"refits": len(certainty.refits.seeds), "refit_share": REFIT_SHARE,
            "n_fit": certainty.n_fit, "n_users": certainty.n_users,
            "n_checked": reliability.n_users,
            "mean_certainty": reliability.mean_certainty,
            "mean_agreement": reliability.mean_agreement, "gap": reliability.gap,
            "max_bin_gap": reliability.max_bin_gap, "rising": reliability.rising,
            "calibrated": reliability.calibrated, "between_share": certainty.between_share,
            "dissolves_below": DISSOLVES_BELOW, "weak_below": WEAK_BELOW}


def short_history_table(result: SegmentationResult) -> pd.DataFrame | None:
    """How often a history cut to its first few orders lands in the full-history segment:
    ``orders``, ``users`` measured and ``kept_segment`` per length; ``None`` where the run
    measured none (a feature table alone)."""
    short = result.metrics.short_history
    if short is None or not any(short.users):
        return None
    return pd.DataFrame({"orders": short.cuts, "users": short.users,
                         "kept_segment": short.agreement})


def umap_scope(result: SegmentationResult) -> str | None:
    """Which users the UMAP map shows, or ``None`` when the embedding did not run."""
    umap = result.metrics.umap
    if umap is None or "umap_x" not in result.segments:
        return None
    n = len(result.segments)
    return (f"all {n:,} users" if umap.sample_size is None
            else f"a seeded sample of {umap.sample_size:,} of {n:,} users")


def umap_note(result: SegmentationResult) -> str | None:
    """How the UMAP map was made, or ``None`` when the embedding did not run."""
    scope = umap_scope(result)
    if scope is None:
        return None
    umap = result.metrics.umap
    if umap is None:
        return None
    fitted = umap.fit_sample_size
    layout = ("" if fitted is None else
              f"; layout fitted on a seeded {fitted:,} of them, the others placed with the "
              "fitted model's transform")
    return (f"UMAP of {scope} (n_neighbors={umap.n_neighbors}, min_dist={umap.min_dist})"
            f"{layout}; trustworthiness {umap.trustworthiness:.3f} "
            f"(on {umap.trustworthiness_sample:,} of them)")


def radar_profile(result: SegmentationResult) -> pd.DataFrame:
    """Segments x behavioural features, each the standardised difference from the average shopper.

    Values are the profile's ``z_<feature>`` (segment mean minus population
    mean, in population standard deviations), clipped to
    +-:data:`RADAR_Z_LIMIT` and rescaled to [0, 1] so that 0.5 is the average
    shopper. Columns are the labels of :data:`RADAR_FEATURES` found in the profile.
    """
    profiles = result.profiles.sort_values("segment")
    present = {f: label for f, label in RADAR_FEATURES.items() if f"z_{f}" in profiles}
    z = profiles[[f"z_{f}" for f in present]].to_numpy(dtype=np.float64)
    scaled = (np.clip(z, -RADAR_Z_LIMIT, RADAR_Z_LIMIT) + RADAR_Z_LIMIT) / (2 * RADAR_Z_LIMIT)
    return pd.DataFrame(scaled, columns=list(present.values()))


def feature_label(name: str, aisle_names: Mapping[int, str]) -> str:
    """Readable name of a feature column (``aisle_24`` -> its aisle's name where known)."""
    if name.startswith(AISLE_COLUMN_PREFIX):
        aisle = aisle_id(name)
        return f"aisle: {aisle_names.get(aisle, aisle)}"
    return behaviour_label(name)


def eta_squared_table(result: SegmentationResult) -> pd.Series:
    """Per feature (index: readable label), the share of its variance between segments."""
    eta = pd.Series(result.metrics.importance.importance.eta_squared, dtype=float)
    eta.index = [feature_label(name, result.metrics.catalog.aisles) for name in eta.index]
    return eta


def family_importance(result: SegmentationResult) -> pd.DataFrame:
    """One row per feature family (index: family name), largest accuracy drop first.

    Columns: ``drop`` (share of shoppers the saved model moves when the family
    is shuffled), ``drop_std``, ``alone_accuracy`` (share it places in their
    segment on its own) and ``clear`` (drop at least the run's ``clear_drop``).
    """
    groups = result.metrics.importance.grouped.groups
    return pd.DataFrame({
        "drop": [g.drop for g in groups], "drop_std": [g.drop_std for g in groups],
        "alone_accuracy": [g.alone_accuracy for g in groups],
        "clear": [bool(g.clear) for g in groups],
    }, index=[g.name for g in groups]).astype({"drop": float, "drop_std": float,
                                               "alone_accuracy": float})


def importance_scope(result: SegmentationResult) -> dict[str, Any]:
    """What the family importance was measured on: users, repeats, the clear-drop line, the
    largest segment's share (the yardstick of a family alone)."""
    grouped = result.metrics.importance.grouped
    return {"n_users": grouped.n_users, "n_repeats": grouped.n_repeats, "clear_drop": CLEAR_DROP,
            "majority_share": grouped.majority_share, "base_accuracy": grouped.base_accuracy}


def segment_rules(result: SegmentationResult) -> list[SegmentRules]:
    """Per segment (by number): its rules (conditions, precision, coverage) and their joint
    numbers."""
    return sorted(result.metrics.rules, key=lambda entry: entry.segment)


def personas(result: SegmentationResult) -> list[Persona]:
    """Each segment's persona (name, actions, evidence, basket), by segment number."""
    return sorted(result.metrics.personas.personas, key=lambda persona: persona.segment)


def top_aisle_lifts(result: SegmentationResult) -> list[pd.Series]:
    """Per segment, its top aisles by lift (index: aisle name, values: lift)."""
    profiles = result.profiles.sort_values("segment")
    return [pd.Series(list(lifts), index=list(names), dtype=float)
            for names, lifts in zip(profiles["top_aisles"], profiles["top_aisle_lifts"])]


def segment_table(result: SegmentationResult) -> pd.DataFrame:
    """One row per segment: the facts shown beside each persona."""
    profiles = result.profiles.sort_values("segment").reset_index(drop=True)
    silhouette = result.metrics.silhouette.per_cluster
    outliers = (result.segments.groupby("segment")[density_method(result)]
                .agg(lambda s: float((s == -1).mean())))
    return pd.DataFrame({
        "segment": profiles["segment"],
        "persona": persona_names(result),
        "users": profiles["size"],
        "share": profiles["share"],
        "silhouette": [finite_or_none(silhouette.get(int(j), math.nan))
                       for j in profiles["segment"]],
        "basket_size": profiles["basket_size_mean"],
        "days_between": profiles["days_between_mean"],
        "reorder_ratio": profiles["reorder_ratio"],
        "preferred_hour": profiles["preferred_hour"],
        "weekend_share": profiles["weekend_share"],
        "density_outliers": outliers.reindex(profiles["segment"]).to_numpy(),
    })


def timings_table(result: SegmentationResult) -> pd.Series:
    """Wall seconds per stage, in the order the stages ran."""
    return pd.Series(dict(result.timings), dtype=float)


def between_guidance(result: SegmentationResult) -> pd.DataFrame:
    """Per segment: its shoppers between personas, where they lean, and the actions they can share.

    Columns: ``segment``, ``persona``, ``between`` (shoppers with membership
    below :data:`~gpuseg.cluster.BETWEEN_PERSONAS`), ``between_share`` (of the
    segment), ``second`` / ``second_persona`` (their most common second
    segment; the segment's most common one where none is between), ``shared``
    (the actions of both segments; where they share none, broad campaigns).
    """
    names = persona_names(result)
    actions = {p.segment: {a.key: a.text for a in p.actions if a.key != BASELINE}
               for p in personas(result)}
    segments = result.segments
    rows = []
    for j, name in enumerate(names):
        users = segments[segments["segment"] == j]
        between = users[users["membership"] < BETWEEN_PERSONAS]
        second = int((between if len(between) else users)["second_segment"].mode().iloc[0])
        own, other = actions.get(j, {}), actions.get(second, {})
        shared = [text for key, text in own.items() if key in other]
        rows.append({"segment": j, "persona": name, "between": len(between),
                     "between_share": len(between) / max(len(users), 1), "second": second,
                     "second_persona": names[second],
                     "shared": "; ".join(shared) or "none shared: broad campaigns"})
    return pd.DataFrame(rows)


#: The map's outer ring: shoppers farther from the fitted shoppers' median than this quantile of
#: the fitted shoppers' own distances.
OUTER_RING_QUANTILE = 0.9
#: Placed shoppers at least this many times over-represented in the outer ring make a halo.
HALO_RATIO = 1.5


def placed_users(result: SegmentationResult) -> np.ndarray | None:
    """Which shoppers the map placed onto a layout fitted on others (a mask over the segments
    table); ``None`` when every mapped shopper was fitted or the map did not run."""
    umap = result.metrics.umap
    if umap is None or umap.fitted is None or "umap_x" not in result.segments:
        return None
    coords = result.segments[["umap_x", "umap_y"]].to_numpy(dtype=np.float64)
    placed = np.isfinite(coords).all(axis=1)
    placed[np.asarray(umap.fitted, dtype=np.int64)] = False
    return placed if placed.any() else None


def placement(result: SegmentationResult) -> dict[str, float] | None:
    """Where the map's placed shoppers (outside the layout's fit sample) landed.

    Returns ``None`` when every mapped shopper was fitted; otherwise
    ``fitted`` and ``placed`` (shoppers), ``placed_share`` (of the mapped) and
    ``outer_ring_share`` (of the shoppers in the outer ring: farther from the
    fitted shoppers' median point than :data:`OUTER_RING_QUANTILE` of the
    fitted shoppers are), and ``halo`` (1.0 when the outer ring holds at least
    :data:`HALO_RATIO` times the placed share).
    """
    placed = placed_users(result)
    if placed is None:
        return None
    coords = result.segments[["umap_x", "umap_y"]].to_numpy(dtype=np.float64)
    mapped = np.isfinite(coords).all(axis=1)
    fitted = mapped & ~placed
    centre = np.median(coords[fitted], axis=0)
    radius = np.linalg.norm(coords - centre, axis=1)
    outer = mapped & (radius >= np.quantile(radius[fitted], OUTER_RING_QUANTILE))
    placed_share = float(placed[mapped].mean())
    outer_share = float(placed[outer].mean())
    return {"fitted": float(fitted.sum()), "placed": float(placed.sum()),
            "placed_share": placed_share, "outer_ring_share": outer_share,
            "halo": float(outer_share >= HALO_RATIO * placed_share)}
