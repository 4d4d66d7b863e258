"""The pipeline's stages, one module each, over any row source (:mod:`gpuseg.rows`).

:mod:`~gpuseg.stages.base` holds the protocol (:class:`~gpuseg.stages.base.Stage`:
fit on rows or a declared seeded sample, assign every block) and
:func:`~gpuseg.stages.base.run_stage`; :mod:`~gpuseg.stages.features` opens a
data set in one process as a row source. The order the stages run in is
:data:`gpuseg.pipeline.STAGES`. Each stage adapts the algorithms of
:mod:`gpuseg.preprocess`, :mod:`gpuseg.cluster`, :mod:`gpuseg.quality`,
:mod:`gpuseg.personas`, :mod:`gpuseg.explain` and :mod:`gpuseg.embed` to the
row source; those modules know nothing of where the rows are.
"""
