# Sourced by benchmarks/run_gpu.sh and benchmarks/run_gpu_accuracy.sh on a GPU machine without
# internet: installs the carried wheels/ (benchmarks/make_wheels.sh) into $SITE without their
# dependencies, unpacks wheels/*.tar.xz there (SimpleITK, re-compressed), and puts $SITE and this
# checkout on PYTHONPATH (gpu_site); then says what the machine is and checks that the packages
# import (gpu_machine). Need $PY and $SITE; return non-zero when something is missing.
gpu_site() {
    ls wheels/*.whl >/dev/null 2>&1 || { echo "no wheels/: run benchmarks/make_wheels.sh here and carry 'wheels'"; return 2; }
    timeout 120 "$PY" -m pip install -q --no-deps --no-index --no-compile --no-cache-dir --upgrade --target "$SITE" wheels/*.whl || return 3
    for archive in wheels/*.tar.xz; do
        [ -e "$archive" ] || continue
        timeout 120 "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' "$archive" "$SITE" || return 3
    done
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
}

gpu_machine() {
    echo "== machine"
    if command -v nvidia-smi >/dev/null; then timeout 20 nvidia-smi; else echo "no nvidia-smi"; fi
    nproc
    timeout 60 "$PY" - <<'PY'
import platform, monai, numpy, SimpleITK, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| monai", monai.__version__, "| numpy", numpy.__version__, "| SimpleITK", SimpleITK.Version.VersionString())
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")
PY
}
