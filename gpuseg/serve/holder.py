"""The model a service answers with, and its reload.

A reload reads the run directory again into a new :class:`ServedModel`,
checks it whole (every file, the catalog, the model id recomputed from what
was read), and only then swaps one reference: a batch that started keeps the
model object it started with, the next batch takes the new one. A reload that
fails leaves the old model in place and records why.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GpusegError
from ..features import feature_columns
from ..model import SegmentModel, load_model, model_id, read_model_meta, resolve_model_dir
from ..model_catalog import ModelCatalog

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class ServedModel:
    """A loaded model with the catalog and provenance a service needs.

    Attributes
    ----------
    model : SegmentModel
    catalog : ModelCatalog
        ``model.catalog``, present by construction.
    meta : dict
        ``model.json``.
    path : Path
        The model folder it was read from.
    loaded_at : str
        When it was read (UTC, ISO 8601).
    """

    model: SegmentModel
    catalog: ModelCatalog
    meta: dict[str, Any]
    path: Path
    loaded_at: str = field(default_factory=_now)

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` shows (without the service's own fields)."""
        return {
            "model": self.model_id,
            "k": self.model.k,
            "personas": [{"segment": j, "persona": name}
                         for j, name in enumerate(self.model.persona_names)],
            "min_orders": self.model.min_orders,
            "n_features": len(self.model.feature_names),
            "memberships": self.model.gives_memberships,
            "created": self.meta.get("created"),
            "source_fingerprint": self.meta.get("source_fingerprint"),
            "fitted_on": self.meta.get("fitted_on", {}),
            "gpuseg_version": self.meta.get("gpuseg_version"),
            "path": str(self.path),
            "loaded_at": self.loaded_at,
        }


def load_served_model(run: str | os.PathLike) -> ServedModel:
    """Read and check the model of a run directory (or a model folder) for serving.

    Raises
    ------
    GpusegError
        One line naming the folder and what is wrong: missing or damaged
        files, a model saved before models kept their catalog (rerun
        ``gpuseg run``), or files of two different models (a new run replaced
        the folder while it was read: try again).
    """
    folder = resolve_model_dir(run)
    meta = read_model_meta(folder)
    missing = [key for key in ("catalog", "model_id", "created", "source_fingerprint")
               if key not in meta]
    if missing or meta.get("catalog") is None:
        what = ", ".join(missing) if missing else "catalog"
        raise GpusegError(
            f"{folder} holds a model (format {meta.get('format_version')}) without what the "
            f"service needs ({what}: the product -> aisle -> department catalog and the model's "
            "provenance); rerun 'gpuseg run' to write a model that has them")
    model = load_model(folder)
    read_again = read_model_meta(folder)
    if model.catalog is None or model_id(model) != read_again.get("model_id"):
        raise GpusegError(f"{folder} changed while it was read, or its files do not belong "
                          "together (model_id does not match the arrays); try again")
    expected = set(feature_columns(model.catalog.aisle_ids))
    unknown = [name for name in model.feature_names if name not in expected]
    if unknown:
        raise GpusegError(f"{folder}: the model's features {', '.join(unknown[:5])} are not "
                          "features of its catalog; the model is damaged: rerun 'gpuseg run'")
    return ServedModel(model=model, catalog=model.catalog, meta=read_again, path=folder)


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: ``reloaded`` with the model now served, or why it kept the old one."""

    reloaded: bool
    model: str
    previous: str
    error: str | None = None
    at: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {"reloaded": self.reloaded, "model": self.model, "previous": self.previous,
                "error": self.error, "at": self.at}


class ModelHolder:
    """The served model, swapped whole on reload; reloads run one at a time.

    Parameters
    ----------
    run : path
        The run directory (or model folder) given to ``--model``; read again
        on every reload.
    served : ServedModel, optional
        Already loaded (the command loads it before binding the port, so that
        a bad model stops it with exit code 2); read from ``run`` if omitted.
    """

    def __init__(self, run: str | os.PathLike, served: ServedModel | None = None) -> None:
        self.run = Path(run)
        self._served = served if served is not None else load_served_model(run)
        self._reloading = threading.Lock()
        self.last_reload: ReloadOutcome | None = None

    @property
    def current(self) -> ServedModel:
        """The model for the next batch (a batch reads it once, when it starts)."""
        return self._served

    def reload(self) -> ReloadOutcome:
        """Read ``run`` again; swap to it when it is whole, else keep the current model.

        Blocking (it reads files): the service calls it from a worker thread.
        """
        with self._reloading:
            previous = self._served
            try:
                loaded = load_served_model(self.run)
            except GpusegError as exc:
                outcome = ReloadOutcome(False, previous.model_id, previous.model_id, str(exc))
                log.warning("reload failed, still serving model %s: %s", previous.model_id, exc)
            else:
                self._served = loaded
                outcome = ReloadOutcome(True, loaded.model_id, previous.model_id)
                log.info("reloaded %s: model %s (was %s)", self.run, loaded.model_id,
                            previous.model_id)
            self.last_reload = outcome
            return outcome
