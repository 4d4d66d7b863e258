"""The stage protocol: fit on rows (or a declared seeded sample of them), then assign every block.

A stage is a :class:`Stage` subclass: :meth:`~Stage.fit` reads what it needs
from the row source (sums over every user, or the rows of its seeded sample,
which :class:`FitRows` gathers), :attr:`~Stage.assign` is a block function
the orchestrator maps over every user's rows, and :meth:`~Stage.finish` turns
the fit and the assigned column into the stage's typed output. Which sample a
stage fits on is declared once, by :attr:`~Stage.sample_field` (a
:class:`~gpuseg.config.PipelineConfig` field resolved by the config) or
:meth:`~Stage.sample_size`. :func:`run_stage` is the one place where "sample,
fit, assign every user" happens, whichever row source holds the users.
"""
from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ..backend import Backend
from ..config import PipelineConfig
from ..facts import CatalogNames, InputFacts, UserCounts
from ..model_catalog import ModelCatalog
from ..numerics.sampling import seeded_sample
from ..rows import BlockFunction, Column, RowSource
from ..timing import StageTimer

Fitted = TypeVar("Fitted")
Output = TypeVar("Output")


@dataclass(frozen=True)
class Features:
    """Every user's features as a column of the row source, and what the run knows of them.

    Attributes
    ----------
    X : Column, shape (n_users, n_features)
        float64 features in ``names`` order (original units).
    user_ids : numpy.ndarray
        User id of each row (host).
    names : tuple of str
    catalog : CatalogNames
    users : UserCounts
    input : InputFacts
    model_catalog : ModelCatalog or None
        What the saved model needs to turn new orders into features (the
        products' aisles, departments and organic flags); ``None`` where no
        product table was given (a feature table alone).
    """

    X: Column
    user_ids: np.ndarray
    names: tuple[str, ...]
    catalog: CatalogNames
    users: UserCounts
    input: InputFacts
    model_catalog: ModelCatalog | None = None


@dataclass
class Session:
    """A data set opened as a row source, for one run: the rows, their features, and what the
    place they live in adds to the run (its facts for metrics.json, files for the run folder)."""

    rows: RowSource
    features: Features
    timer: StageTimer
    facts: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def stage(self, name: str) -> AbstractContextManager[None]:
        """Time stage ``name`` (a source may turn its own failures into user errors here)."""
        return self.timer.stage(name)

    def run(self, stage: Stage[Any, Output], state: RunState) -> Output:
        """Run ``stage`` over these rows (:func:`run_stage`; a source may retry it here)."""
        return run_stage(stage, state)


class Outputs:
    """Each finished stage's output, by stage class (typed: ``outputs[Pca]`` is a Projection)."""

    def __init__(self) -> None:
        self._by_stage: dict[type[Stage[Any, Any]], Any] = {}

    def __getitem__(self, stage: type[Stage[Any, Output]]) -> Output:
        if stage not in self._by_stage:
            raise KeyError(f"stage {stage.name!r} has not run")
        return self._by_stage[stage]

    def get(self, stage: type[Stage[Any, Output]]) -> Output | None:
        return self._by_stage.get(stage)

    def __contains__(self, stage: object) -> bool:
        return stage in self._by_stage

    def add(self, stage: type[Stage[Any, Output]], output: Output) -> None:
        self._by_stage[stage] = output

    def __iter__(self) -> Iterator[tuple[type[Stage[Any, Any]], Any]]:
        return iter(self._by_stage.items())


@dataclass
class RunState:
    """What every stage of one run sees: its options, backend, rows and the outputs so far."""

    config: PipelineConfig
    backend: Backend
    rows: RowSource
    features: Features
    embed: bool = True
    outputs: Outputs = field(default_factory=Outputs)

    @property
    def n_users(self) -> int:
        return self.rows.n_users

    def sample(self, size: int | None, *, seed: int) -> np.ndarray | None:
        """Sorted host positions of a seeded sample of ``size`` users (``None``: every user).

        The same positions on every backend and row source for the same seed and
        user count, so one process and Dask fit on the same users.
        """
        rows = seeded_sample(self.n_users, size, seed=seed, backend=self.backend)
        return None if rows is None else self.backend.to_numpy(rows, np.int64)


@dataclass(frozen=True)
class FitRows:
    """The rows a stage's :meth:`~Stage.fit` works on: a seeded sample, or every user.

    Attributes
    ----------
    positions : numpy.ndarray or None
        Sorted positions of the sampled users; ``None`` when the stage reads
        every user (through sums, or because the sample covers everyone).
    state : RunState
    """

    positions: np.ndarray | None
    state: RunState

    @property
    def n(self) -> int:
        return self.state.n_users if self.positions is None else int(self.positions.shape[0])

    @property
    def sampled(self) -> bool:
        return self.positions is not None

    def take(self, column: Column) -> Any:
        """The fitted users' rows of ``column``, gathered into one backend array."""
        return self.state.rows.take(column, self.positions)

    def spread(self, values: Any, width: int = 0) -> np.ndarray:
        """Per-user host values of the fitted users, NaN for the users outside the sample."""
        values = self.state.backend.to_numpy(values, np.float64)
        if self.positions is None:
            return values
        shape = (self.state.n_users, width) if width else self.state.n_users
        spread = np.full(shape, np.nan)
        spread[self.positions] = values
        return spread


class Stage(abc.ABC, Generic[Fitted, Output]):
    """One step of the pipeline. Subclasses declare their name and sample, and implement
    :meth:`fit` and :meth:`finish` (and :attr:`assign` when they give every user a value)."""

    #: Key of its timing (and, unless :meth:`metrics` says otherwise, of its metrics).
    name: ClassVar[str]
    #: The config field sizing the seeded sample :meth:`fit` runs on; ``None``: every user.
    sample_field: ClassVar[str | None] = None
    #: Seed offset of the sample (stages sharing an offset share their sample's users).
    sample_seed: ClassVar[int] = 0
    #: ``assign(backend, *blocks, **params)``: the stage's value of each user of a block,
    #: mapped over every user by :func:`run_stage` (``None``: the stage assigns nothing).
    assign: ClassVar[BlockFunction | None] = None
    #: Values per user of :attr:`assign` (``None``: one), their dtype, and whether it needs each
    #: block's ``first_row`` (see :meth:`gpuseg.rows.RowSource.map`).
    assign_width: ClassVar[int | None] = None
    assign_dtype: ClassVar[Any] = np.float64
    assign_offsets: ClassVar[bool] = False

    def key(self, config: PipelineConfig) -> str:
        """The stage's name in timings and progress (the density stage names its method)."""
        return self.name

    def applies(self, state: RunState) -> bool:
        """Whether the stage runs at all in this run."""
        return True

    def assigns(self, state: RunState, rows: FitRows) -> bool:
        """Whether :attr:`assign` runs over every user (not when the fit already covers them)."""
        return self.assign is not None

    def fit_positions(self, state: RunState) -> np.ndarray | None:
        """The users :meth:`fit` runs on: a seeded sample of :meth:`sample_size` users."""
        return state.sample(self.sample_size(state), seed=state.config.seed + self.sample_seed)

    def sample_size(self, state: RunState) -> int | None:
        """Users :meth:`fit` runs on (``None``: every user), resolved from :attr:`sample_field`."""
        if self.sample_field is None:
            return None
        return state.config.sample_size(self.sample_field, state.backend)

    @abc.abstractmethod
    def fit(self, state: RunState, rows: FitRows) -> Fitted:
        """Fit on ``rows`` (its seeded sample, or every user through the row source)."""

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        """The columns whose blocks :attr:`assign` reads (a stage that assigns names them)."""
        raise NotImplementedError(f"stage {self.name!r} assigns but names no columns")

    def assign_params(self, state: RunState, fitted: Fitted) -> dict[str, Any]:
        """Host parameters of :attr:`assign` (sent to each worker once)."""
        return {}

    def width(self, state: RunState, fitted: Fitted) -> int | None:
        """Values per user :attr:`assign` gives (``None``: one); :attr:`assign_width` unless
        the fit decides it."""
        return self.assign_width

    @abc.abstractmethod
    def finish(self, state: RunState, fitted: Fitted, assigned: Column | None,
               rows: FitRows) -> Output:
        """The stage's output from its fit and every user's assigned values."""

    def on_host(self, output: Output) -> Output:
        """The output as the run's result keeps it: per-user columns the row source holds
        left out (the result's segments table has every user's values)."""
        return output

    def metrics(self, output: Output) -> dict[str, Any]:
        """The stage's entries of metrics.json (``{name: output.to_dict()}`` by default)."""
        return {self.name: output.to_dict()}  # type: ignore[attr-defined]


def run_stage(stage: Stage[Fitted, Output], state: RunState) -> Output:
    """Sample, fit, assign every user, finish: the one path every stage runs through."""
    rows = FitRows(positions=stage.fit_positions(state), state=state)
    fitted = stage.fit(state, rows)
    assigned = None
    if stage.assign is not None and stage.assigns(state, rows):
        assigned = state.rows.map(stage.assign, *stage.assign_columns(state),
                                  width=stage.width(state, fitted), dtype=stage.assign_dtype,
                                  offsets=stage.assign_offsets,
                                  **stage.assign_params(state, fitted))
    output = stage.finish(state, fitted, assigned, rows)
    state.outputs.add(type(stage), output)
    return output
