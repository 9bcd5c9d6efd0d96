#!/usr/bin/env bash
# The GPU run of benchmarks/networks.py, for a machine that has torch (CUDA), numpy and pyyaml but
# neither monai nor this project, and no internet. Finishes in under 6 minutes (every step is
# under `timeout`, the benchmark gets what is left of a 340 s budget).
#
# Before (here, with internet):  bash benchmarks/make_wheels.sh   # -> wheels/ (gitignored)
# On the device machine, from the repository root, with `wheels` carried along:
#     bash benchmarks/run_gpu.sh
# Results: $OUT/networks_gpu.json and $OUT/networks_gpu.log ($OUT defaults to outputs/gpu).
# For a dry run on CPU: DEVICE=cpu BENCH_ARGS="--configs autoencoder --img-size 64" bash benchmarks/run_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=340
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-outputs/gpu}
SITE=${SITE:-/tmp/mama_site}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

echo "== install wheels (no deps, no index) into $SITE"
ls wheels/*.whl || { echo "no wheels/: run benchmarks/make_wheels.sh here and carry 'wheels'"; exit 2; }
timeout 60 "$PY" -m pip install -q --no-deps --no-index --no-compile --no-cache-dir --upgrade --target "$SITE" wheels/*.whl || exit 3
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

echo "== machine"
if command -v nvidia-smi >/dev/null; then timeout 20 nvidia-smi; else echo "no nvidia-smi"; fi
timeout 60 "$PY" - <<'PY' || exit 4
import platform, monai, numpy, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| monai", monai.__version__, "| numpy", numpy.__version__)
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")
PY

LEFT=$((BUDGET - SECONDS))
echo "== benchmark (device $DEVICE, batch 8, bf16, at most ${LEFT}s)"
# shellcheck disable=SC2086
timeout -k 10 "$LEFT" "$PY" benchmarks/networks.py --device "$DEVICE" --batch-size 8 --amp bf16 \
    --json "$OUT/networks_gpu.json" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/networks_gpu.log"
rc=${PIPESTATUS[0]}
echo "== done in ${SECONDS}s, exit $rc"
exit "$rc"
