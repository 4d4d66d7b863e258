"""Knee (elbow) detection on short host curves: the WCSS elbow and the DBSCAN eps.

The method is Kneedle (Satopaa et al., 2011) in its chord form: both axes are
scaled to [0, 1], the straight line between the curve's first and last point
is the reference, and the knee is the point farthest from that line on the
side where the curve bends. Callers pass short curves (tens to a few thousand
points); a long device curve is subsampled on the device first, so this module
works on the host with numpy only.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import GpusegError

Curve = Literal["convex", "concave"]
Direction = Literal["decreasing", "increasing"]


def find_knee(x, y, *, curve: Curve = "convex", direction: Direction = "decreasing") -> int:
    """Index of the knee of the curve ``y(x)``.

    Parameters
    ----------
    x, y : array-like of float
        The curve, ``x`` strictly increasing, on the host.
    curve : {"convex", "concave"}
        ``convex`` bends below its chord (WCSS against K, a sorted k-distance
        curve); ``concave`` bends above it (explained variance against the
        number of components).
    direction : {"decreasing", "increasing"}
        Whether ``y`` falls (WCSS) or rises (sorted k-distances) overall; it
        fixes which end of the normalised chord sits high.

    Returns
    -------
    int
        Position in ``x`` of the point farthest from the chord on the bending
        side. A straight or flat curve has no knee; then the first point
        (index 0) is returned, and so is it for curves of one or two points.

    Raises
    ------
    GpusegError
        When ``x`` and ``y`` differ in length, are empty, hold non-finite
        values, or ``x`` is not strictly increasing, or an option is unknown.
    """
    if curve not in ("convex", "concave"):
        raise GpusegError(f"curve must be 'convex' or 'concave' (got {curve!r})")
    if direction not in ("decreasing", "increasing"):
        raise GpusegError(f"direction must be 'decreasing' or 'increasing' (got {direction!r})")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise GpusegError("find_knee needs two 1-D curves of equal, non-zero length "
                          f"(got {x.shape} and {y.shape})")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise GpusegError("find_knee needs finite values; the curve holds NaN or infinity")
    if x.size < 3:
        return 0
    if np.any(np.diff(x) <= 0):
        raise GpusegError("find_knee needs x strictly increasing")
    y_span = y.max() - y.min()
    if y_span == 0:
        return 0
    x_norm = (x - x[0]) / (x[-1] - x[0])
    y_norm = (y - y.min()) / y_span
    chord = 1.0 - x_norm if direction == "decreasing" else x_norm
    # A convex curve sags below its chord and a concave one bulges above it; the knee is the
    # deepest point on that side, so the sign makes "farther on the bending side" the maximum.
    distance = chord - y_norm if curve == "convex" else y_norm - chord
    best = int(np.argmax(distance))
    return best if distance[best] > 0 else 0
