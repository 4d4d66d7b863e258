"""The certainty arithmetic: how surely a user stays in its segment, from its distances to the centres.

A user's certainty is a calibrated probability that the user stays in its
segment when the shoppers are resampled and KMeans is fitted again (the
refits of :mod:`gpuseg.cluster.refits` measure it; :mod:`gpuseg.cluster.certainty`
fits the calibration on them). It is computed from the user's squared
distances ``d_j`` to the K centres, in the PCA space where KMeans and every
refit draw their boundaries, and K + 2 stored numbers:

1. ``z_j = -d_j / (2 T)``, the log posterior (up to a constant) of K
   equal-weight isotropic Gaussians of variance ``T`` (the ``temperature``) at
   the centres; ``s``, the own segment's posterior, says how near the user
   sits to a boundary on the scale at which refits move boundaries;
2. ``p = sigmoid(slope * logit(s) + intercept[segment])``: one slope, and one
   intercept per segment, so that a segment which does not come back on the
   refits lowers every member's certainty.

``logit(s)`` is ``z_own - logsumexp(z_other)``, computed without forming
``s``, and bounded at +-:data:`LOGIT_BOUND` (``s`` within 1e-6 of 0 or 1):
beyond it every user is as sure as the fit can tell. The next segment is the
most probable other one under the posterior; its certainty is its share of the
rest, ``1 - p``, as the posterior shares it among the other segments.

The same functions compute the run's certainties (a block function over every
user) and ``gpuseg assign``'s (through :mod:`gpuseg.model`), over ``xp``, so
that the two agree to rounding.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bound on ``|logit(s)|``: ``s`` is taken to lie within [1e-6, 1 - 1e-6].
LOGIT_BOUND = math.log((1.0 - 1e-6) / 1e-6)


@dataclass(frozen=True)
class Calibration:
    """``p = sigmoid(slope * logit(s) + intercept)`` for users with a short history."""

    slope: float
    intercept: float


@dataclass(frozen=True)
class CertaintyParams:
    """What the saved model stores to give any user its certainty.

    Attributes
    ----------
    temperature : float
        ``T`` of the posterior over the centres (squared PCA-space units).
    slope : float
        Weight of ``logit(s)``, at least 0: certainty never falls as a user
        moves towards its own centre.
    intercepts : numpy.ndarray, shape (k,)
        One per segment.
    short_history : mapping of int to Calibration
        For users with that many orders (fewer than the run's ``min_orders``,
        assigned provisionally): ``sigmoid(slope * logit(s) + intercept)``,
        fitted in the run on shoppers whose history was cut to that many
        orders. Empty where the run measured none.
    """

    temperature: float
    slope: float
    intercepts: np.ndarray
    short_history: Mapping[int, Calibration] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, exact (floats written as Python writes them round-trip)."""
        return {"temperature": float(self.temperature), "slope": float(self.slope),
                "intercepts": [float(b) for b in self.intercepts],
                "short_history": {str(n): {"slope": float(c.slope), "intercept": float(c.intercept)}
                                  for n, c in sorted(self.short_history.items())}}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CertaintyParams:
        """The inverse of :meth:`to_dict` (raises KeyError, TypeError or ValueError when damaged)."""
        short = {int(n): Calibration(slope=float(c["slope"]), intercept=float(c["intercept"]))
                 for n, c in dict(values.get("short_history") or {}).items()}
        return cls(temperature=float(values["temperature"]), slope=float(values["slope"]),
                   intercepts=np.asarray([float(b) for b in values["intercepts"]], dtype=np.float64),
                   short_history=short)


def squared_distances(X: Any, centres: Any, *, xp: Any) -> Any:
    """``|x - c_j|^2`` for every user and centre, shape (n, k), never below 0."""
    d2 = ((X ** 2).sum(axis=1)[:, None] - 2.0 * (X @ centres.T)
          + (centres ** 2).sum(axis=1)[None, :])
    return xp.maximum(d2, 0.0)


def sigmoid(z: Any, *, xp: Any) -> Any:
    """``1 / (1 + exp(-z))`` without overflow."""
    return 0.5 * (1.0 + xp.tanh(0.5 * z))


def own_logit(d2: Any, labels: Any, temperature: float, *, xp: Any) -> tuple[Any, Any, Any]:
    """``logit(s)`` of each user's own segment (bounded), the next segment and its share of the
    other segments' posterior.

    Parameters
    ----------
    d2 : array, shape (n, k)
        Squared distances to the centres.
    labels : int array, shape (n,)
        Each user's segment.
    temperature : float

    Returns
    -------
    logit, second, second_share : arrays, shape (n,)
    """
    n, k = int(d2.shape[0]), int(d2.shape[1])
    z = -0.5 * d2 / temperature
    rows = xp.arange(n)
    own = z[rows, labels]
    if k == 1:
        return (xp.full(n, LOGIT_BOUND, dtype=xp.float64), xp.zeros(n, dtype=xp.int64),
                xp.zeros(n, dtype=xp.float64))
    others = z.copy()
    others[rows, labels] = -xp.inf
    top = others.max(axis=1)
    second = others.argmax(axis=1)
    rest = xp.log(xp.exp(others - top[:, None]).sum(axis=1)) + top
    logit = xp.clip(own - rest, -LOGIT_BOUND, LOGIT_BOUND)
    return logit, second, xp.exp(top - rest)


def certainty_columns(X: Any, labels: Any, centres: Any, params: CertaintyParams, *, xp: Any,
                      orders: Any = None) -> tuple[Any, Any, Any]:
    """Each user's certainty of its segment, the next segment and that one's certainty.

    Parameters
    ----------
    X : array, shape (n, n_components)
        Users in the PCA space.
    labels : int array, shape (n,)
        Their segments (nearest centre).
    centres : array, shape (k, n_components)
    params : CertaintyParams
    orders : int array, shape (n,), optional
        Each user's orders with products, for provisional users: a user whose
        count has a :attr:`CertaintyParams.short_history` calibration gets it
        instead of the segment's.

    Returns
    -------
    certainty, second, second_certainty : arrays, shape (n,)
    """
    labels = labels.astype(xp.int64)
    logit, second, share = own_logit(squared_distances(X, centres, xp=xp), labels,
                                     params.temperature, xp=xp)
    intercepts = xp.asarray(params.intercepts, dtype=xp.float64)
    z = params.slope * logit + intercepts[labels]
    if orders is not None:
        for count, calibration in params.short_history.items():
            short = orders == count
            z = xp.where(short, calibration.slope * logit + calibration.intercept, z)
    p = sigmoid(z, xp=xp)
    return p, second.astype(xp.int32), share * (1.0 - p)
