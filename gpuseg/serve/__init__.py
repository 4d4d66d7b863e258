"""``gpuseg serve``: a saved model behind an HTTP API, for assigning shoppers as they order.

:mod:`~gpuseg.serve.shoppers` reads and checks a request; :mod:`~gpuseg.serve.holder`
holds the served model and reloads it; :mod:`~gpuseg.serve.batcher` gathers
requests into batches; :mod:`~gpuseg.serve.scoring` runs a batch through
:func:`gpuseg.assign.assign_tables`, the path of ``gpuseg assign``;
:mod:`~gpuseg.serve.settings` holds its limits; :mod:`~gpuseg.serve.app` is the
FastAPI application and :mod:`~gpuseg.serve.server` runs it under uvicorn.
FastAPI and uvicorn (the ``[serve]`` extra) are imported only by the last two,
so the rest of gpuseg never needs them.
"""
