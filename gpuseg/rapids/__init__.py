"""The RAPIDS side of gpuseg, in one place: the GPU backend and its Dask engine.

:mod:`~gpuseg.rapids.backend` holds :class:`~gpuseg.rapids.backend.RapidsBackend`
(cuDF, CuPy, cuML in GPU memory), :mod:`~gpuseg.rapids.memory` the RMM memory
resource it allocates from, and :mod:`~gpuseg.rapids.dask_engine` the GPU workers'
engine (dask-cuda, cuml.dask). Importing this package loads no GPU
library; :mod:`gpuseg.registry` builds them when asked for.
"""
