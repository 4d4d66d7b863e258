"""Array numerics that know nothing of the pipeline, written once over ``xp`` (numpy or CuPy).

:mod:`~gpuseg.numerics.arrays` (dense positions, bincounts, segment sums,
nearest centres), :mod:`~gpuseg.numerics.sampling` (seeded row samples, the
same on every backend), :mod:`~gpuseg.numerics.knee` (the knee of a curve),
:mod:`~gpuseg.numerics.certainty` (a user's certainty from its distances to the
centres) and :mod:`~gpuseg.numerics.mixture` (the Gaussian mixture of models
saved before format 4). Pipeline stages and backends import these; they import
neither.
"""
