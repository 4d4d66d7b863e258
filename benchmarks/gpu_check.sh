#!/usr/bin/env bash
# The device check for a lent GPU host that has no package index: install the staged RAPIDS, stop at
# once if the GPU backend is unavailable, run the GPU tests, then benchmark one size on the GPU and,
# if time is left, on the host's CPU backend (same data, for the same-machine ratio and agreement).
#
#   [BUDGET_S=420] [SIZE=206209] [TESTS_S=180] [UMAP_FIT_SAMPLE=20000] benchmarks/gpu_check.sh [RESULTS_DIR]
#
# RESULTS_DIR defaults to $OUT (the device tool's return folder), else benchmarks/results. Every step
# writes its results there as it finishes, so a run killed for time still returns what it measured.
# BUDGET_S is the device time this script may take in all; the benchmark starts no backend run after it.
# UMAP_FIT_SAMPLE is the same on both backends, so their maps' trustworthiness can be compared.
# Expects the staged parts (../shared/gpu/stage-rapids-wheels.sh) copied into /tmp/rapids (partNN +
# install.sh). Exit 3: the GPU backend is unavailable (nothing else ran).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
results=${1:-${OUT:-benchmarks/results}}
mkdir -p "$results"
export SITE=${SITE:-/tmp/site} PYTHONUNBUFFERED=1
budget=${BUDGET_S:-420}
left() { echo $(( budget - (SECONDS - start) )); }

if [ -f /tmp/rapids/install.sh ]; then
    (cd /tmp/rapids && bash install.sh) 2>&1 | tail -5 | tee "$results/gpu-install.txt"
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import cudf, cuml, cupy; print('cudf', cudf.__version__, 'cuml', cuml.__version__, 'cupy', cupy.__version__)"
} 2>&1 | tee "$results/gpu-versions.txt"
# Fail fast: with RAPIDS broken, `pytest -m gpu` would skip everything and exit 0.
python3 - <<'PY' 2>&1 | tee -a "$results/gpu-versions.txt"
import sys
from gpuseg.registry import get_backend, gpu_unavailable_reason
reason = gpu_unavailable_reason()
if reason is not None:
    print(f"GPU backend unavailable: {reason}")
    sys.exit(3)
backend = get_backend("gpu")
print(backend.device, backend.versions())
PY
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "stopping: the GPU backend is unavailable (see $results/gpu-versions.txt)"
    exit 3
fi
echo "setup took $((SECONDS - start)) s; $(left) s of the budget left"

# --require-gpu turns a skipped GPU case into a failure; -m gpu selects only the GPU cases.
timeout "${TESTS_S:-180}" python3 -m pytest -m gpu --require-gpu -q -rfEs -p no:cacheprovider \
    --durations=15 2>&1 | tee "$results/gpu-pytest.txt"
tests_rc=${PIPESTATUS[0]}
echo "pytest -m gpu exit $tests_rc after $((SECONDS - start)) s; $(left) s left" | tee -a "$results/gpu-pytest.txt"

# One size, one repeat, GPU first; no warm-up (every worker is a cold process anyway) and no CPU
# peers. The CPU run starts only if the budget still allows it; results are written after each.
python3 -m benchmarks --sizes "${SIZE:-206209}" --repeats 1 --backends gpu cpu --no-peers \
    --no-warmup --umap-fit-sample "${UMAP_FIT_SAMPLE:-20000}" --time-budget "$(left)" \
    --results "$results" 2>&1 | tee "$results/gpu-benchmark.log"
bench_rc=${PIPESTATUS[0]}
echo "pytest -m gpu exit $tests_rc, benchmark exit $bench_rc, $((SECONDS - start)) s in all"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
