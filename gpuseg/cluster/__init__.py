"""Segment discovery: the K sweep, KMeans, refits and certainty, Ward over micro-clusters, density.

One module per method: :mod:`~gpuseg.cluster.sweep` (the K sweep and its
validity indices), :mod:`~gpuseg.cluster.kchoice` (the choice of K),
:mod:`~gpuseg.cluster.kmeans`, :mod:`~gpuseg.cluster.refits` (KMeans again on
subsamples, matched to the segments) and :mod:`~gpuseg.cluster.certainty` (each
shopper's certainty, calibrated on those refits), :mod:`~gpuseg.cluster.ward`
(hierarchical) and :mod:`~gpuseg.cluster.density` (DBSCAN and HDBSCAN); their
public names are importable from here. The stages of :mod:`gpuseg.stages` run them
over a row source, on seeded samples where the CPU needs them.

Every function takes the PCA-space matrix ``X`` (a backend array, users x
components) and a :class:`~gpuseg.backend.Backend`, computes with
``backend.xp`` and the backend's estimators, and returns a frozen dataclass
whose ``to_dict()`` is JSON-ready. Per-user arrays (labels) stay backend
arrays; K-sized summaries are host values. Two steps leave the device on
purpose, each with its reason at the spot: the Ward linkage over the
micro-cluster centroids, and the short curves that knees are found on.
"""
from __future__ import annotations

from .certainty import BETWEEN_PERSONAS, Certainty, reliability_table
from .density import KNEE_CURVE_POINTS, DbscanFit, HdbscanFit, dbscan, hdbscan
from .kchoice import SILHOUETTE_TIE, KChoice, choose_k
from .kmeans import KMeansFit, fit_kmeans
from .refits import Refits, subsample_refits
from .sweep import KSweep, calinski_harabasz, davies_bouldin, k_sweep, total_sum_of_squares
from .ward import MICRO_FIT_USERS_PER_CLUSTER, MICRO_MAX_ITER, HierarchicalFit, cut_linkage, ward_linkage

__all__ = ["BETWEEN_PERSONAS", "KNEE_CURVE_POINTS", "MICRO_FIT_USERS_PER_CLUSTER",
           "MICRO_MAX_ITER", "SILHOUETTE_TIE", "Certainty", "DbscanFit", "HdbscanFit",
           "HierarchicalFit", "KChoice", "KMeansFit", "KSweep", "Refits", "calinski_harabasz",
           "choose_k", "cut_linkage", "davies_bouldin", "dbscan", "fit_kmeans", "hdbscan",
           "k_sweep", "reliability_table", "subsample_refits", "total_sum_of_squares",
           "ward_linkage"]
