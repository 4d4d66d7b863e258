"""The RAPIDS path's guards: each shown here with stand-ins (no device), and on a device.

What a reading of cuML, dask-cuda, RMM and CuPy 26.10 found that the GPU path
must guard against: a ``--workers`` count above the visible GPUs, a Dask
worker's memory resource replaced by the backend, HDBSCAN fed Fortran-ordered
rows, and CuPy's Cholesky factorisation not raising on a matrix that is not
positive definite. The stand-ins mirror the library behaviour each guard is
for; the ``gpu`` cases check the same on the real libraries.
"""
from __future__ import annotations

import pytest

from gpuseg.config import options_as_flags
from gpuseg.errors import ConfigError
from gpuseg.rapids.dask_engine import GpuDaskEngine


# -- --workers above the GPU count -----------------------------------------------------------
def test_more_gpu_workers_than_gpus_is_refused_naming_the_option_and_the_count(monkeypatch):
    monkeypatch.setattr(GpuDaskEngine, "visible_gpus", staticmethod(lambda: 1))
    with pytest.raises(ConfigError) as error:
        GpuDaskEngine().local_cluster(2, None)
    assert str(error.value).startswith("workers=2 starts one worker per GPU, but 1 GPU is "
                                       "visible here")
    assert "use workers=1 or fewer" in str(error.value)
    # In the CLI the message names the flag (the run exits 2 with it).
    monkeypatch.setattr(GpuDaskEngine, "visible_gpus", staticmethod(lambda: 2))
    with options_as_flags(), pytest.raises(ConfigError, match="^--workers 3 .* but 2 GPUs are "
                                                              "visible .* --workers 2 or fewer"):
        GpuDaskEngine().local_cluster(3, None)


@pytest.mark.gpu
def test_the_gpu_engine_refuses_one_worker_more_than_the_visible_gpus(gpu_backend):
    pytest.importorskip("dask_cuda")
    gpus = GpuDaskEngine.visible_gpus()
    assert gpus >= 1
    # Refused before dask-cuda starts anything (its own error comes after the first workers).
    with pytest.raises(ConfigError, match=f"but {gpus} GPUs? (is|are) visible"):
        GpuDaskEngine().local_cluster(gpus + 1, None)
