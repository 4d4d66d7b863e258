"""Shared fixtures: the ``backend`` fixture runs a test once per backend.

The ``gpu`` case is marked ``gpu`` and skips with its reason where RAPIDS or
a device is missing, so one suite serves both a CPU-only CI and a GPU host
(``pytest -m gpu`` there).
"""
from __future__ import annotations

import pytest

from gpuseg.backend import Backend
from gpuseg.registry import get_backend, gpu_unavailable_reason


@pytest.fixture(scope="session")
def cpu_backend() -> Backend:
    return get_backend("cpu")


def pytest_addoption(parser) -> None:
    parser.addoption("--require-gpu", action="store_true",
                     help="fail the GPU cases instead of skipping them when the GPU backend is "
                          "unavailable (for the device check, where a skip would hide a broken "
                          "install)")


@pytest.fixture(scope="session")
def gpu_backend(request) -> Backend:
    reason = gpu_unavailable_reason()
    if reason is not None:
        if request.config.getoption("--require-gpu"):
            pytest.fail(f"GPU backend unavailable under --require-gpu: {reason}", pytrace=False)
        pytest.skip(f"GPU backend unavailable: {reason}")
    return get_backend("gpu")


@pytest.fixture(scope="session", params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def backend(request) -> Backend:
    """Each backend in turn: every test taking it runs on CPU and (where possible) GPU."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Keep the loader's parquet cache out of the user's home while testing."""
    import os

    previous = os.environ.get("GPUSEG_CACHE_DIR")
    os.environ["GPUSEG_CACHE_DIR"] = str(tmp_path_factory.mktemp("gpuseg-cache"))
    yield
    if previous is None:
        os.environ.pop("GPUSEG_CACHE_DIR", None)
    else:
        os.environ["GPUSEG_CACHE_DIR"] = previous
