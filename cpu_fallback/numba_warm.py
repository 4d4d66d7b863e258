"""Compile umap-learn's kernels into gpuseg's cache: ``python -m cpu_fallback.numba_warm``.

Run in the background by the CPU backend at the start of a run whose cache is
cold (:func:`cpu_fallback.numba_cache.start_warm_up`): a small fit takes
every umap-learn code path of the map stage, with the argument types a run
gives them (float64 users), so the run's own calls load machine code instead
of compiling it. Marks the cache warm when done. The placement kernel
(:mod:`cpu_fallback.placement`) is left to the first run that places users on
a fitted layout: most runs place no one, and each would wait for it here.
"""
from __future__ import annotations

import os

import numpy as np

from cpu_fallback.numba_cache import WARM_MARK, warm_folder
from cpu_fallback.umap_transform import PlacingUMAP


def warm_up() -> None:
    """One small fit (on the exact-neighbour graph, as every cached fit), then the mark."""
    rng = np.random.default_rng(0)
    reducer = PlacingUMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_components=2,
                          n_jobs=1, n_epochs=5)
    reducer.fit(rng.normal(size=(300, 8)))
    (warm_folder() / WARM_MARK).write_text("compiled\n", encoding="utf-8")


if __name__ == "__main__":
    os.nice(10)  # the run's own stages first: the warm-up takes what they leave
    warm_up()
