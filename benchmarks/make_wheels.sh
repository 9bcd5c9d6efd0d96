#!/usr/bin/env bash
# Build what benchmarks/run_gpu.sh and benchmarks/run_gpu_accuracy.sh install on a GPU machine that
# has torch (CUDA), numpy, scipy, scikit-learn, matplotlib and pyyaml but no internet: the wheels of
# monai (pure Python; needs only numpy and torch), pytorch-ignite and the DICOM/NIfTI readers, and
# SimpleITK's files re-compressed with xz (28 MB instead of its 53 MB wheel). This project is not
# packed: both scripts run the checkout that travels with them (PYTHONPATH), so the repository
# (~15 MB) and wheels/ (~36 MB) stay under the device tool's 64 MiB carry limit. Run here, from
# anywhere, with a pip that can reach the package index (about 4 minutes: xz -9 on 2 cores):
#     bash benchmarks/make_wheels.sh            # -> wheels/ at the repository root (gitignored)
# Then carry `wheels` to the GPU machine; benchmarks/gpu_site.sh installs it there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
rm -rf wheels
"$PY" -m pip wheel -q --no-deps -w wheels "monai==1.6.1" "pytorch-ignite==0.5.5"
# for the GPU machine's Python (3.12 when last seen; SimpleITK's wheel is abi3, any CPython >= 3.11 takes it)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PYTHON:-3.12}" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d wheels \
    "SimpleITK==2.5.7" "pydicom==3.0.2" "nibabel==5.4.2"
sitk=$(ls wheels/simpleitk-*.whl)
unpacked=$(mktemp -d)
unzip -q "$sitk" -d "$unpacked"
tar -C "$unpacked" -cf - . | xz -9 -T0 > wheels/simpleitk.tar.xz
rm -rf "$unpacked" "$sitk"
du -sh wheels
ls -l wheels
for w in wheels/*.whl; do
    echo "== $w requires:"
    unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' || true
done
