#!/usr/bin/env bash
# The one script for a GPU machine that has torch (CUDA), numpy and pyyaml but neither monai, ignite
# nor this project, and no internet. Every step runs under `timeout`; the whole run stays under
# BUDGET seconds (default 480, for the device tool's 600 s per call), so it runs once per session.
#
#   1. install the carried wheels (benchmarks/gpu_site.sh);
#   2. benchmarks/speed.py on the paper configuration (228 x 228, N = 2000, bf16): before (eager)
#      and after (channels-last, torch.compile, CUDA graphs, fused Adam, cuDNN attention) in the
#      same run, images/s, TFLOP/s, peak memory and agreement with the eager outputs;
#   3. benchmarks/loader.py with the machine's cores: decode + preprocessing slices/s per core
#      and with loader workers, against the GPU's rate.
#
# Before (here, with internet):  bash benchmarks/make_wheels.sh   # -> wheels/ (gitignored)
# On the device machine, from the repository root, with `wheels` carried along:
#     bash benchmarks/run_gpu.sh
# Results: $OUT/speed_gpu.json|.log and $OUT/loader_gpu.log ($OUT defaults to outputs/gpu).
# A CPU dry run: DEVICE=cpu SPEED_ARGS="--config configs/network/mamanet_compact.yaml --img-size 32 \
#   --batch-size 4 --infer-batch 4 --iters 2 --variants eager channels_last" LOADER_ARGS="--slices 8 \
#   --matrix 128 --repeats 1 --files 2" bash benchmarks/run_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-480}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-outputs/gpu}
SITE=${SITE:-/tmp/mama_site}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

echo "== install wheels (no deps, no index) into $SITE"
# shellcheck source=benchmarks/gpu_site.sh
. benchmarks/gpu_site.sh
gpu_site || exit $?

gpu_machine || exit 4

# the speed table first (it matters most); variants in priority order, later ones skipped when
# the speed budget is spent; the loader keeps 70 s
LEFT=$((BUDGET - SECONDS - 70))
echo "== speed: before/after (device $DEVICE, at most ${LEFT}s)"
# shellcheck disable=SC2086
timeout -k 10 "$LEFT" "$PY" benchmarks/speed.py --device "$DEVICE" --budget $((LEFT - 150)) --json "$OUT/speed_gpu.json" \
    ${SPEED_ARGS:---variants eager compile_cl cudagraphs channels_last fused_adam compile_cl_cudnn compile} \
    2>&1 | tee "$OUT/speed_gpu.log"
rc_speed=${PIPESTATUS[0]}

LEFT=$((BUDGET - SECONDS))
WORKERS=$(( $(nproc) > 16 ? 16 : $(nproc) ))
echo "== loader: one core and $WORKERS workers (at most ${LEFT}s)"
# shellcheck disable=SC2086
timeout -k 5 "$LEFT" "$PY" benchmarks/loader.py --workers "$WORKERS" --files "$WORKERS" --repeats 1 ${LOADER_ARGS:-} \
    2>&1 | tee "$OUT/loader_gpu.log"
rc_loader=${PIPESTATUS[0]}
echo "== done in ${SECONDS}s, speed exit $rc_speed, loader exit $rc_loader"
exit $(( rc_speed != 0 ? rc_speed : rc_loader ))
