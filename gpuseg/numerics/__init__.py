"""Array numerics that know nothing of the pipeline, written once over ``xp`` (numpy or CuPy).

:mod:`~gpuseg.numerics.arrays` (dense positions, bincounts, segment sums,
nearest centres), :mod:`~gpuseg.numerics.sampling` (seeded row samples, the
same on every backend), :mod:`~gpuseg.numerics.knee` (the knee of a curve) and
:mod:`~gpuseg.numerics.mixture` (Gaussian-mixture EM, which the RAPIDS backend
offers as its ``GaussianMixture``). Pipeline stages and backends import these;
they import neither.
"""
