"""The saved model of a run, from its stage outputs: what ``gpuseg assign`` and importance use."""
from __future__ import annotations

from ..model import SegmentModel
from .base import RunState
from .certainty import Certainty
from .kmeans import KMeans
from .pca import Pca
from .personas import Personas
from .scale import Scale


def segment_model(state: RunState) -> SegmentModel:
    """Scaler, PCA, centroids, certainty and persona names of the run so far (host arrays)."""
    scaler, pcs = state.outputs[Scale].scaler, state.outputs[Pca].pcs
    return SegmentModel(
        feature_names=state.features.names, scaler_mean=scaler.mean, scaler_scale=scaler.scale,
        pca_mean=pcs.mean, pca_components=pcs.kept, centroids=state.outputs[KMeans].centroids,
        persona_names=state.outputs[Personas].names, min_orders=state.config.min_orders,
        catalog=state.features.model_catalog, feature_cap=scaler.cap,
        certainty=state.outputs[Certainty].params)
