#!/usr/bin/env bash
# The detection benchmark at the paper's 228 x 228 on one GPU (the issue "detection that works",
# item 4: "where a GPU is available, the same at the paper's 228 x 228"), in one device-tool call.
# For a machine that has torch (CUDA), numpy, scipy, scikit-learn, matplotlib and pyyaml but not
# monai, ignite, SimpleITK, nibabel, pydicom nor this project, and no internet:
#
#   1. install the carried wheels (benchmarks/gpu_site.sh);
#   2. benchmarks/accuracy.py on the demo's fair LIDC split at 228 x 228, 1000 iterations of batch
#      8 (bf16 autocast, as `mama-monai train` on CUDA), seeds 0-4, the three compact models and
#      the paper's MAMA Net (global memory, 957 M parameters), WORKERS runs sharing the GPU, seed by
#      seed, the compact models first (--order seed), no run started after the accuracy budget
#      (--budget), the rest listed;
#   3. if the hard limit stopped it, the page rebuilt from the rows that finished (--from-runs);
#   4. everything in one archive, $OUT/accuracy_gpu.tar.gz (the tool brings back at most 8 files).
#
# Before (here, with internet):  bash benchmarks/make_wheels.sh   # -> wheels/ (gitignored)
# On the device machine, from the repository root, with `wheels` carried along:
#     bash benchmarks/run_gpu_accuracy.sh
# Then here: tar -xzf <files_at>/accuracy_gpu.tar.gz -C docs/accuracy/gpu_228 and write its notes.
# The prediction and what the run decides: docs/accuracy/gpu_228_prediction.txt (written first).
# A CPU dry run (2 minutes): DEVICE=cpu WORKERS=1 BUDGET=240 ACC_ARGS="--quick --seeds 0 \
#   --models mamanet_compact autoencoder mamanet_paper" bash benchmarks/run_gpu_accuracy.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-500}          # seconds for the whole script (the device tool allows 600 per call)
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-3}          # three paper-sized runs take ~63 GB: an H100 holds them
OUT=${OUT:-outputs/gpu}
SITE=${SITE:-/tmp/mama_site}
ACC=$(mktemp -d)/accuracy_gpu
mkdir -p "$OUT" "$ACC"
export PYTHONUNBUFFERED=1

echo "== install wheels (no deps, no index) into $SITE"
# shellcheck source=benchmarks/gpu_site.sh
. benchmarks/gpu_site.sh
gpu_site || exit $?

gpu_machine || exit 4

# runs start until START_BY, RUN_MAX seconds (the longest run expected) before LIMIT, when whatever
# still trains is stopped (its row is lost); 40 s are left for the page and the archive
RUN_MAX=${RUN_MAX:-150}
LIMIT=$((BUDGET - SECONDS - 40))
START_BY=$((LIMIT - RUN_MAX))
[ "$START_BY" -gt 0 ] || { echo "BUDGET=$BUDGET leaves no time to start a run (limit ${LIMIT}s, RUN_MAX=$RUN_MAX): expected BUDGET >= $((SECONDS + 41 + RUN_MAX))"; exit 5; }
echo "== accuracy at 228 x 228 (device $DEVICE, runs start until ${START_BY}s, stopped at ${LIMIT}s)"
# shellcheck disable=SC2086
timeout -k 10 "$LIMIT" "$PY" benchmarks/accuracy.py --device "$DEVICE" --workers "$WORKERS" --order seed \
    --budget "$START_BY" --output "$ACC" \
    ${ACC_ARGS:---size 228 --iterations 1000 --interval 100 --tasks lidc --seeds 0 1 2 3 4 --ensemble 1 --no-ablations --models mamanet_paper mamanet_compact memae autoencoder} \
    2>&1 | tee "$ACC/accuracy_gpu.log"
rc=${PIPESTATUS[0]}
if [ ! -f "$ACC/accuracy/results.json" ] && [ -s "$ACC/accuracy/runs.jsonl" ]; then
    echo "== stopped (exit $rc): the page from the runs that finished"
    timeout 30 "$PY" benchmarks/accuracy.py --report-only --from-runs --output "$ACC" || true
fi
tar -czf "$OUT/accuracy_gpu.tar.gz" -C "$ACC" .
echo "== done in ${SECONDS}s, accuracy exit $rc; $OUT/accuracy_gpu.tar.gz:"
tar -tzf "$OUT/accuracy_gpu.tar.gz"
exit "$rc"
