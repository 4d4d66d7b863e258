#!/usr/bin/env bash
# The device check for a lent GPU host that has no package index: install the staged RAPIDS, stop at
# once if the GPU backend is unavailable, run the GPU tests, the GPU Dask tests and one `--workers 1`
# GPU run, then benchmark one size on the GPU and, if time is left, on the host's CPU backend (same
# data, for the same-machine ratio and agreement).
#
#   [BUDGET_S=420] [SIZE=206209] [TESTS_S=150] [DASK_TESTS_S=120] [WORKERS_USERS=20000]
#   [WORKERS_S=90] [UMAP_FIT_SAMPLE=20000] benchmarks/gpu_check.sh [RESULTS_DIR]
#
# RESULTS_DIR defaults to $OUT (the device tool's return folder), else benchmarks/results. Every step
# writes its results there as it finishes, so a run killed for time still returns what it measured.
# BUDGET_S is the device time this script may take in all: no step runs past it (each step's own
# limit is cut to what is left), and the benchmark starts no backend run after it.
# UMAP_FIT_SAMPLE is the same on both backends, so their maps' trustworthiness can be compared.
# Expects the staged parts (../shared/gpu/stage-rapids-wheels.sh) copied into /tmp/rapids (partNN +
# install.sh); SITE is where they are unpacked (default /tmp/site).
#
# Exit 0: every step passed. Exit 3: the GPU backend is unavailable (nothing else ran). Exit 4: the
# GPU Dask engine is unavailable (a staging without the Dask stack): the single-GPU steps ran, the
# Dask steps did not. Exit 1: a step failed (its output says which).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
results=${1:-${OUT:-benchmarks/results}}
mkdir -p "$results"
export SITE=${SITE:-/tmp/site} PYTHONUNBUFFERED=1
budget=${BUDGET_S:-420}
left() { echo $(( budget - (SECONDS - start) )); }
# A step's time limit: its own, or what is left of the budget if that is less (at least 1 s).
limit() { local l; l=$(left); [ "$l" -lt "$1" ] && echo $(( l > 1 ? l : 1 )) || echo "$1"; }

if [ -f /tmp/rapids/install.sh ]; then
    (cd /tmp/rapids && bash install.sh) 2>&1 | tail -5 | tee "$results/gpu-install.txt"
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import cudf, cuml, cupy; print('cudf', cudf.__version__, 'cuml', cuml.__version__, 'cupy', cupy.__version__)"
} 2>&1 | tee "$results/gpu-versions.txt"
# Fail fast: with RAPIDS broken, `pytest -m gpu` would skip everything and exit 0. The Dask stack is
# imported first, as its workers will (a find_spec would miss a dependency that fails to import);
# that needs no device, so the device-like environment checks it too.
python3 - <<'PY' 2>&1 | tee -a "$results/gpu-versions.txt"
import importlib
import sys

from gpuseg.rapids.dask_engine import GpuDaskEngine
from gpuseg.registry import dask_engine, get_backend, gpu_unavailable_reason

problems = []
for module in GpuDaskEngine.modules:
    try:
        importlib.import_module(module)
    except Exception as exc:  # an ImportError, or a library's own error at import
        problems.append(f"{module} ({type(exc).__name__}: {exc})")
print("GPU Dask engine:", "; ".join(problems) if problems else "imports")
reason = gpu_unavailable_reason()
if reason is not None:
    print(f"GPU backend unavailable: {reason}")
    sys.exit(3)
backend = get_backend("gpu")
print(backend.device, backend.versions())
if problems:
    print("GPU Dask engine unavailable: the Dask steps will not run")
    sys.exit(4)
dask_engine(backend)
PY
preflight_rc=${PIPESTATUS[0]}
if [ "$preflight_rc" -ne 0 ] && [ "$preflight_rc" -ne 4 ]; then
    echo "stopping: the GPU backend is unavailable (check exit $preflight_rc; see $results/gpu-versions.txt)"
    exit 3
fi
dask_ok=$([ "$preflight_rc" -eq 0 ] && echo 1 || echo 0)
echo "setup took $((SECONDS - start)) s; $(left) s of the budget left"
failed=0

# --require-gpu turns a skipped GPU case into a failure; -m gpu selects only the GPU cases. The Dask
# module runs on its own below, so that a hung cluster cannot take the other results with it.
timeout "$(limit "${TESTS_S:-150}")" python3 -m pytest -m gpu --require-gpu -q -rfEs \
    -p no:cacheprovider --durations=15 --ignore=tests/test_distributed.py 2>&1 \
    | tee "$results/gpu-pytest.txt"
rc=${PIPESTATUS[0]}; [ "$rc" -eq 0 ] || failed=1
echo "pytest -m gpu exit $rc after $((SECONDS - start)) s; $(left) s left" | tee -a "$results/gpu-pytest.txt"

if [ "$dask_ok" -eq 1 ]; then
    timeout "$(limit "${DASK_TESTS_S:-120}")" python3 -m pytest -m gpu --require-gpu -q -rfEs \
        -p no:cacheprovider --durations=10 tests/test_distributed.py 2>&1 \
        | tee "$results/gpu-dask-pytest.txt"
    rc=${PIPESTATUS[0]}; [ "$rc" -eq 0 ] || failed=1
    echo "GPU Dask tests exit $rc after $((SECONDS - start)) s; $(left) s left" \
        | tee -a "$results/gpu-dask-pytest.txt"

    # One run across a local dask-cuda cluster of one GPU worker, as a user starts it.
    parts=/tmp/gpuseg-check-parts run=/tmp/gpuseg-check-workers-run
    rm -rf "$parts" "$run"
    {
        timeout "$(limit "${WORKERS_S:-90}")" bash -c "
            python3 -m gpuseg.cli synth --users ${WORKERS_USERS:-20000} --partitions 4 \
                --separation realistic --out $parts -q &&
            python3 -m gpuseg.cli run --data $parts --out $run --backend gpu --workers 1 -q"
    } 2>&1 | tee "$results/gpu-workers-run.txt"
    rc=${PIPESTATUS[0]}; [ "$rc" -eq 0 ] || failed=1
    [ -f "$run/metrics.json" ] && cp "$run/metrics.json" "$results/gpu-workers-run-metrics.json"
    echo "--workers 1 GPU run exit $rc after $((SECONDS - start)) s; $(left) s left" \
        | tee -a "$results/gpu-workers-run.txt"
fi

# One size, one repeat, GPU first; no warm-up (every worker is a cold process anyway) and no CPU
# peers. The CPU run starts only if the budget still allows it; results are written after each.
python3 -m benchmarks --sizes "${SIZE:-206209}" --repeats 1 --backends gpu cpu --no-peers \
    --no-warmup --umap-fit-sample "${UMAP_FIT_SAMPLE:-20000}" --time-budget "$(left)" \
    --results "$results" 2>&1 | tee "$results/gpu-benchmark.log"
rc=${PIPESTATUS[0]}; [ "$rc" -eq 0 ] || failed=1
echo "benchmark exit $rc; $((SECONDS - start)) s in all; failed steps: $failed; GPU Dask engine: $([ "$dask_ok" -eq 1 ] && echo available || echo unavailable)"
if [ "$dask_ok" -ne 1 ]; then exit 4; fi
exit "$failed"
