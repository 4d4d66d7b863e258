"""Packaging facts a user relies on: the conda environment, the console script, the CI script."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_is_a_valid_rapids_conda_environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "gpuseg"
    assert env["channels"][:3] == ["rapidsai", "conda-forge", "nvidia"]
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.12" in deps
    assert any(re.fullmatch(r"rapids=26\.\d+", d) for d in deps)
    assert {d.split("=")[0] for d in deps} >= {"cudf", "cuml", "cupy"}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(line.startswith("-e .") for line in pip)


def test_pyproject_declares_both_packages_script_and_extras():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["scripts"]["gpuseg"] == "gpuseg.cli:main"
    assert project["requires-python"] == ">=3.10"
    runtime = {re.split(r"[<>=]", d)[0] for d in project["dependencies"]}
    assert runtime >= {"numpy", "pandas", "pyarrow", "scikit-learn", "umap-learn", "kagglehub", "matplotlib"}
    extras = project["optional-dependencies"]
    assert any(d.startswith("cudf-cu") for d in extras["gpu"])
    assert any(d.startswith("cuml-cu") for d in extras["gpu"])
    assert any(d.startswith("cupy-cuda") for d in extras["gpu"])
    assert {re.split(r"[<>=]", d)[0] for d in extras["test"]} >= {"pytest", "hypothesis", "duckdb"}
    assert {re.split(r"[<>=;]", d)[0] for d in extras["serve"]} >= {"fastapi", "uvicorn"}
    assert "gpuseg[serve]" in extras["test"]  # CI installs .[test]: the service's tests run there
    assert set(meta["tool"]["setuptools"]["packages"]["find"]["include"]) == {"gpuseg*", "cpu_fallback*"}


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:sh|bash)\n(.*?)\n```", readme, flags=re.S)
    assert len(commands) >= 2, "README must open with the demo command and the test command"
    demo, tests = commands[0].strip(), commands[1].strip()
    assert demo.endswith("gpuseg demo")
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_the_gpu_extra_brings_every_module_the_gpu_dask_engine_needs():
    """Otherwise pip install 'gpuseg[gpu]' leaves --workers refused, advising gpuseg[gpu]."""
    from gpuseg.rapids.dask_engine import GpuDaskEngine

    # The distribution of the extra that brings each module (distributed comes with dask-cuda).
    brought_by = {"distributed": "dask-cuda", "dask_cuda": "dask-cuda", "bokeh": "bokeh"}
    assert set(GpuDaskEngine.modules) == set(brought_by)
    assert GpuDaskEngine.extra == "gpu"
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["gpu"]
    names = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in extra}
    assert set(brought_by.values()) <= names, set(brought_by.values()) - names
