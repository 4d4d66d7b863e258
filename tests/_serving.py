"""Helpers for the service's tests: a served copy of a run, a server in a thread, request bodies.

The service always serves a copy of the shared demo run's model (the tests
replace and damage it to test reloads; the demo run is an input of other
tests and stays untouched).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gpuseg.model import load_model, save_model
from gpuseg.staging import atomic_directory


def serve_copy(run_dir: Path, target: Path) -> Path:
    """A run directory at ``target`` holding a copy of ``run_dir``'s model (replaced if present)."""
    with atomic_directory(target) as staging:
        shutil.copytree(run_dir / "model", staging / "model")
    return target


def put_other_model(target: Path, run_dir: Path, tag: str) -> str:
    """Replace ``target`` at once by a run whose model differs from ``run_dir``'s (its personas
    renamed with ``tag``), as a re-segmentation would; the new model's id."""
    from gpuseg.model import read_model_meta

    model = load_model(run_dir / "model")
    renamed = replace(model, persona_names=tuple(f"{name} ({tag})" for name in model.persona_names))
    with atomic_directory(target) as staging:
        save_model(renamed, staging / "model", source_fingerprint="test")
    return str(read_model_meta(target / "model")["model_id"])


def body(data: Any, users: Any) -> bytes:
    """The JSON body of ``POST /v1/assign`` for ``users`` of a loaded data set."""
    from gpuseg.serve.shoppers import request_body

    return json.dumps(request_body(data.orders, data.order_products, users)).encode()


def users_with_orders(data: Any) -> dict[str, np.ndarray]:
    """User ids by their number of orders with products: ``"few"`` (< 5) and ``"enough"``."""
    with_products = data.orders[data.orders["order_id"].isin(data.order_products["order_id"])]
    counts = with_products.groupby("user_id").size()
    return {"few": counts.index[counts < 5].to_numpy(),
            "enough": counts.index[counts >= 5].to_numpy()}


class ServerThread:
    """``gpuseg serve``'s app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, run: Path, **settings: Any) -> None:
        import uvicorn

        from gpuseg.registry import get_backend
        from gpuseg.serve.app import create_app
        from gpuseg.serve.holder import ModelHolder
        from gpuseg.serve.server import bind
        from gpuseg.serve.settings import ServeSettings

        self.holder = ModelHolder(run)
        self.app = create_app(self.holder, get_backend("cpu"), ServeSettings(**settings))
        self.socket = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


@contextlib.contextmanager
def serving(run: Path, **settings: Any) -> Iterator[ServerThread]:
    with ServerThread(run, **settings) as server:
        yield server
