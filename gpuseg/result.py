"""The host boundary: everything a run produced, as numpy/pandas/plain Python only."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .config import PipelineConfig
from .model import SegmentModel

if TYPE_CHECKING:
    from .metrics import Metrics


@dataclass(frozen=True)
class SegmentationResult:
    """A finished segmentation run, entirely on the host.

    Attributes
    ----------
    segments : pandas.DataFrame
        One row per segmented user: ``user_id, segment, persona, silhouette``
        (NaN outside the silhouette sample), ``hierarchical``, ``dbscan``
        (-1 = outlier), and ``umap_x, umap_y`` when the embedding ran (NaN
        outside the UMAP sample).
    profiles : pandas.DataFrame
        One row per segment (size, share, feature means, department shares,
        top aisles/departments by lift, preferred hour, persona and actions).
    metrics : Metrics
        Every number of the run, typed (:class:`~gpuseg.metrics.Metrics`;
        ``metrics.to_dict()`` is metrics.json).
    timings : dict
        Wall seconds per stage.
    model : SegmentModel
        Enough to assign new users.
    linkage : numpy.ndarray
        Ward linkage over the micro-clusters (scipy format), for a dendrogram.
    activity : numpy.ndarray
        Orders per segment x weekday x hour (k, 7, 24).
    files : Mapping[str, str]
        Further files of the run directory, name -> text (a distributed run's
        Dask performance report); empty for a one-process run.
    """

    segments: pd.DataFrame
    profiles: pd.DataFrame
    metrics: Metrics
    timings: Mapping[str, float]
    model: SegmentModel
    linkage: np.ndarray
    activity: np.ndarray
    backend: str
    device: str
    config: PipelineConfig
    personas: tuple[Any, ...] = field(default_factory=tuple)
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.segments["segment"].to_numpy()

    @property
    def k(self) -> int:
        return self.model.k
