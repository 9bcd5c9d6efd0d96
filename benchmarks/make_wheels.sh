#!/usr/bin/env bash
# Build the wheels that benchmarks/run_gpu.sh installs on a GPU machine with no internet:
# monai (pure Python; its only hard dependencies are numpy and torch, already on that machine),
# pytorch-ignite, this project, and the DICOM/NIfTI readers the loader benchmark needs. Run here, from anywhere, with a pip that can reach the package index:
#     bash benchmarks/make_wheels.sh            # -> wheels/ at the repository root (gitignored)
# Then carry `wheels` to the GPU machine (see benchmarks/run_gpu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
rm -rf wheels
"$PY" -m pip wheel --no-deps -w wheels "monai==1.6.1" "pytorch-ignite==0.5.5" .
# the loader benchmark's readers, for the GPU machine's Python (3.12 when last seen; SimpleITK's
# wheel is abi3, so any CPython >= 3.11 takes it): ~58 MB in all, under the 64 MiB carry limit
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PYTHON:-3.12}" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d wheels \
    "SimpleITK==2.5.7" "pydicom==3.0.2" "nibabel==5.4.2"
du -sh wheels
ls -l wheels
for w in wheels/*.whl; do
    echo "== $w requires:"
    unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' || true
done
