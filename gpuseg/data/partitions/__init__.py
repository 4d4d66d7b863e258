"""The partitioned layout's one home: finding, reading and writing partitions of whole users.

:mod:`~gpuseg.data.partitions.source` finds a partitioned folder and reads and
checks its partitions with the loader's own rules;
:mod:`~gpuseg.data.partitions.write` writes tables and partition files. The
synthetic generator (:mod:`gpuseg.data.synth.out_of_core`) and the Dask shuffle
(:mod:`gpuseg.distributed.shuffle`) produce the rows; the Dask workers read
them (:mod:`gpuseg.distributed.tasks`).
"""
