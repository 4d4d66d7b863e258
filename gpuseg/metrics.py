"""Every number of a run, typed: what metrics.json holds and the report reads.

:class:`Metrics` keeps the run's facts (versions, backend, input, users,
catalog names), every stage's host output by stage class (``metrics.outputs``,
typed: ``metrics.certainty`` is a :class:`~gpuseg.cluster.certainty.Certainty`) and the
verdict; :meth:`Metrics.to_dict` writes metrics.json from the stages' own
:meth:`~gpuseg.stages.base.Stage.metrics` entries, in the order they ran.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__
from .cluster import DbscanFit, HdbscanFit
from .cluster.certainty import Certainty as CertaintyOutput
from .cluster.ward import HierarchicalFit
from .config import PipelineConfig
from .embed import Embedding
from .explain.rules import SegmentRules
from .facts import CatalogNames, InputFacts, UserCounts
from .quality import SilhouetteReport, Stability, Verdict, verdict
from .short_history import ShortHistory
from .stages.base import Outputs, Stage
from .stages.certainty import Certainty
from .stages.density import Density
from .stages.hierarchical import Hierarchical
from .stages.importance import Explanations, FeatureImportance
from .stages.kmeans import KMeans, Segmentation
from .stages.pca import Pca, Projection
from .stages.personas import Personas, Profiles
from .stages.rules import Rules
from .stages.short_history import ShortHistoryStage
from .stages.silhouette import Silhouette
from .stages.stability import Stability as StabilityStage
from .stages.sweep import Sweep, SweepChoice
from .stages.umap import Umap


@dataclass(frozen=True)
class Metrics:
    """A finished run's numbers (host values only).

    Attributes
    ----------
    backend, device : str
    versions : dict of str to str
        Libraries the backend computed with.
    config : PipelineConfig
    input : InputFacts
    catalog : CatalogNames
    users : UserCounts
    outputs : Outputs
        Each stage's output, per-user columns left out (they are in the
        result's segments table).
    sections : tuple of (str, object)
        Each stage's metrics.json entries, in the order the stages ran.
    verdict : Verdict
    distributed : dict or None
        Where a run across Dask workers computed, and every process's peak memory.
    """

    backend: str
    device: str
    versions: dict[str, str]
    config: PipelineConfig
    input: InputFacts
    catalog: CatalogNames
    users: UserCounts
    outputs: Outputs
    sections: tuple[tuple[str, Any], ...]
    verdict: Verdict
    distributed: dict[str, Any] | None = None
    gpuseg_version: str = __version__

    # -- typed views of the outputs the report reads -------------------------------------------
    @property
    def preprocess(self) -> Projection:
        return self.outputs[Pca]

    @property
    def sweep(self) -> SweepChoice:
        return self.outputs[Sweep]

    @property
    def kmeans(self) -> Segmentation:
        return self.outputs[KMeans]

    @property
    def certainty(self) -> CertaintyOutput:
        return self.outputs[Certainty]

    @property
    def short_history(self) -> ShortHistory | None:
        return self.outputs.get(ShortHistoryStage)

    @property
    def silhouette(self) -> SilhouetteReport:
        return self.outputs[Silhouette]

    @property
    def stability(self) -> Stability:
        return self.outputs[StabilityStage]

    @property
    def hierarchical(self) -> HierarchicalFit:
        return self.outputs[Hierarchical]

    @property
    def density(self) -> DbscanFit | HdbscanFit:
        return self.outputs[Density]

    @property
    def personas(self) -> Profiles:
        return self.outputs[Personas]

    @property
    def importance(self) -> Explanations:
        return self.outputs[FeatureImportance]

    @property
    def rules(self) -> list[SegmentRules]:
        return self.outputs[Rules]

    @property
    def umap(self) -> Embedding | None:
        return self.outputs.get(Umap)

    def to_dict(self) -> dict[str, Any]:
        """metrics.json (without the timings, which the run directory adds)."""
        entries: dict[str, Any] = {
            "gpuseg_version": self.gpuseg_version, "backend": self.backend,
            "device": self.device, "versions": dict(self.versions),
            "config": self.config.to_dict(), "input": self.input.to_dict(),
            "catalog": self.catalog.to_dict(), "users": self.users.to_dict(),
        }
        for key, value in self.sections:
            entries[key] = value
        entries["verdict"] = self.verdict.to_dict()
        entries.setdefault("umap", None)
        if self.distributed is not None:
            entries["distributed"] = dict(self.distributed)
        return entries


def run_metrics(stages: Sequence[Stage[Any, Any]], outputs: Outputs, *, backend: str,
                device: str, versions: dict[str, str], config: PipelineConfig,
                input: InputFacts, catalog: CatalogNames, users: UserCounts,
                distributed: dict[str, Any] | None) -> Metrics:
    """The metrics of the stages that ran (``outputs`` on the host), in ``stages`` order."""
    sections: list[tuple[str, Any]] = []
    for stage in stages:
        output = outputs.get(type(stage))
        if output is not None:
            sections.extend(stage.metrics(output).items())
    silhouette, stability = outputs[Silhouette], outputs[StabilityStage]
    return Metrics(backend=backend, device=device, versions=versions, config=config,
                   input=input, catalog=catalog, users=users, outputs=outputs,
                   sections=tuple(sections),
                   verdict=verdict(silhouette.overall, stability.seed_ari_mean,
                                   stability.bootstrap_ari_mean),
                   distributed=distributed)
