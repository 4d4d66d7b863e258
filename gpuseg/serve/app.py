"""The HTTP API (FastAPI): JSON in, JSON out, one process, one event loop.

=======================  ==================================================================
``POST /v1/assign``      shoppers' histories -> ``{"model", "users", "excluded"}``
``GET /v1/model``        the served model: id, K, personas, created, source fingerprint,
                         backend, and the last reload
``POST /v1/reload``      read the run directory again (SIGHUP does the same)
``GET /health``          ``{"status": "ok", "model", "batches"}``
=======================  ==================================================================

A request is read and checked on the event loop (:mod:`gpuseg.serve.shoppers`;
a large body in a worker thread, so that it does not hold up the others), then
queued for the batcher (:mod:`gpuseg.serve.batcher`), whose one worker thread
runs each batch through :func:`gpuseg.serve.scoring.assign_batch` and encodes
the answers. Every error is a JSON body ``{"error": {"message", "field",
"row"}}``: 400 for a body that is not JSON, 413 for one over the size limit,
422 for JSON that breaks the layout; a 500 only for a bug, with its traceback
in the server's log and not in the answer.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..backend import Backend
from .batcher import Batcher
from .holder import ModelHolder, ReloadOutcome
from .scoring import assign_batch
from .settings import ServeSettings
from .shoppers import RequestError, Shoppers, read_shoppers

log = logging.getLogger(__name__)

#: Bodies up to this size are checked on the event loop; larger ones in a worker thread.
_INLINE_BODY_BYTES = 256 << 10


def create_app(holder: ModelHolder, backend: Backend, settings: ServeSettings) -> FastAPI:
    """The service's ASGI application.

    Parameters
    ----------
    holder : ModelHolder
        The served model; each batch reads it once, when it starts.
    backend : Backend
        Where batches compute their features and assignments.
    settings : ServeSettings
        Batching and the body size limit.

    Returns
    -------
    FastAPI
        The application. Its batcher starts with the first request and
        drains in the lifespan's shutdown, after the server has stopped
        accepting and finished reading requests: requests in flight get their
        answers.
    """
    def run_batch(batch: Sequence[Shoppers]) -> list[bytes | RequestError]:
        served = holder.current  # read once: the whole batch runs on this model
        return [answer if isinstance(answer, RequestError) else json.dumps(answer).encode()
                for answer in assign_batch(served, batch, backend)]

    batcher: Batcher[Shoppers] = Batcher(run_batch, max_batch=settings.max_batch,
                                         max_wait=settings.max_wait_ms / 1000.0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(title="gpuseg serve", lifespan=lifespan,
                  description="Assigns shoppers to the segments of a saved gpuseg model.")
    app.state.holder = holder
    app.state.batcher = batcher

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc.detail), "field": None, "row": None}},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error answering %s %s", request.method, request.url.path,
                  exc_info=exc)
        return JSONResponse({"error": {"message": "internal error; the server's log has the "
                                                  "details", "field": None, "row": None}},
                            status_code=500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": holder.current.model_id,
                "batches": batcher.stats.to_dict()}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {**holder.current.describe(), "backend": backend.name, "device": backend.device,
                "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
                "last_reload": None if holder.last_reload is None else holder.last_reload.to_dict()}

    @app.post("/v1/reload")
    async def reload() -> JSONResponse:
        outcome = await reload_model(holder)
        return JSONResponse(outcome.to_dict(), status_code=200 if outcome.reloaded else 409)

    @app.post("/v1/assign")
    async def assign(request: Request) -> Response:
        body = await read_body(request, settings.max_body_bytes)
        catalog = holder.current.catalog
        if len(body) <= _INLINE_BODY_BYTES:
            shoppers = read_shoppers(body, catalog)
        else:
            shoppers = await asyncio.get_running_loop().run_in_executor(
                None, read_shoppers, body, catalog)
        answer = await batcher.submit(shoppers, shoppers.n_users)
        return Response(answer, media_type="application/json")

    return app


async def reload_model(holder: ModelHolder) -> ReloadOutcome:
    """Reload the holder's model in a worker thread (it reads files), without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, holder.reload)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    def too_large() -> RequestError:
        return RequestError(f"the body is larger than the limit of {limit:,} bytes "
                            "(gpuseg serve --max-body-mb); send fewer shoppers per request",
                            status=413)

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
