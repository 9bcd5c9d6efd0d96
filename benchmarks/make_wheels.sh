#!/usr/bin/env bash
# Build the wheels that benchmarks/run_gpu.sh installs on a GPU machine with no internet:
# monai (pure Python; its only hard dependencies are numpy and torch, already on that machine)
# and this project. Run here, from anywhere, with a pip that can reach the package index:
#     bash benchmarks/make_wheels.sh            # -> wheels/ at the repository root (gitignored)
# Then carry `wheels` to the GPU machine (see benchmarks/run_gpu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
rm -rf wheels
"$PY" -m pip wheel --no-deps -w wheels "monai==1.6.1" "pytorch-ignite==0.5.5" .
ls -l wheels
for w in wheels/*.whl; do
    echo "== $w requires:"
    unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' || true
done
