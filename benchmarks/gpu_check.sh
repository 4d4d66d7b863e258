#!/usr/bin/env bash
# The GPU check for a host with a CUDA device and staged RAPIDS wheels (no package index needed).
#
#   [SIZES="50000 206209"] [REPEATS=3] benchmarks/gpu_check.sh [RESULTS_DIR]   (default: $OUT, else benchmarks/results)
# The CPU backend runs too (for agreement): size SIZES/REPEATS to the device time left.
#
# Expects the staged parts from ../shared/gpu/stage-rapids-wheels.sh already copied into
# /tmp/rapids (part01..partNN + install.sh); installs them into $SITE (/tmp/site), prints
# library and device versions, runs every GPU-parametrised test, then the benchmark at 50K
# and 206,209 users on both backends. Everything it prints is also written to RESULTS_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
results=${1:-${OUT:-benchmarks/results}}
mkdir -p "$results"
export SITE=${SITE:-/tmp/site} PYTHONUNBUFFERED=1
if [ -f /tmp/rapids/install.sh ]; then
    (cd /tmp/rapids && bash install.sh) || { echo "RAPIDS install failed"; exit 1; }
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import cudf, cuml, cupy; print('cudf', cudf.__version__, 'cuml', cuml.__version__, 'cupy', cupy.__version__)"
    python3 -c "from gpuseg.backend import get_backend; b = get_backend('gpu'); print(b.device, b.versions())"
} 2>&1 | tee "$results/gpu-versions.txt"
python3 -m pytest -m gpu -q -rs -p no:cacheprovider 2>&1 | tee "$results/gpu-pytest.txt"
tests_rc=${PIPESTATUS[0]}
python3 -m benchmarks --sizes ${SIZES:-50000 206209} --repeats ${REPEATS:-3} --results "$results" 2>&1 | tee "$results/gpu-benchmark.log"
bench_rc=${PIPESTATUS[0]}
echo "pytest -m gpu exit $tests_rc, benchmark exit $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
