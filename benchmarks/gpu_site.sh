# Sourced by benchmarks/run_gpu.sh and benchmarks/run_gpu_accuracy.sh on a GPU machine without
# internet: installs the carried wheels/ (benchmarks/make_wheels.sh) into $SITE without their
# dependencies, unpacks wheels/*.tar.xz there (SimpleITK, re-compressed), and puts $SITE and this
# checkout on PYTHONPATH. Needs $PY and $SITE; returns non-zero when something is missing.
gpu_site() {
    ls wheels/*.whl >/dev/null 2>&1 || { echo "no wheels/: run benchmarks/make_wheels.sh here and carry 'wheels'"; return 2; }
    timeout 120 "$PY" -m pip install -q --no-deps --no-index --no-compile --no-cache-dir --upgrade --target "$SITE" wheels/*.whl || return 3
    for archive in wheels/*.tar.xz; do
        [ -e "$archive" ] || continue
        timeout 120 "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' "$archive" "$SITE" || return 3
    done
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
}
