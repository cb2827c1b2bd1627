#!/usr/bin/env bash
# The one-shot GPU check of the CUDA backend (issue #16), for a lent GPU machine: Python 3.12,
# nvcc, gcc and an NVIDIA driver, no network, a few minutes.
#
#   bash tools/gpu_check.sh --fetch    # here, with the package index: fill the dist folder
#   bash tools/gpu_check.sh            # on the GPU machine: install, test, bench, summarize
#
# The dist folder is $LT_GPU_DIST, by default .whl/cuda/ at the repository root (git ignores
# /.whl/), so the device tool carries it with `carry: [".whl"]`. --fetch puts there pycuda's
# sdist and the wheels, for CPython 3.12 on manylinux x86_64, of what the check may need and
# the image may lack: pycuda's pure-Python dependencies (pytools, platformdirs, mako,
# markupsafe, siphash24, typing_extensions), its build requirements (setuptools, wheel, numpy)
# and lazytorch's test requirements (ml_dtypes, networkx, graphviz, pytest, hypothesis and their
# own).
#
# On the GPU machine it checks which of those the image has and installs only the missing ones
# from the folder (no index); builds pycuda from the sdist where `import pycuda.driver` fails,
# with cuRAND off (siteconf.py CUDA_ENABLE_CURAND = False: the toolkit lacks cuRAND's headers)
# and linked against the driver's libcuda.so.1; then runs `pytest -m cuda` (the direct GPU
# tests first, then the op/autograd/nn suites on cuda with the time left) and
# `tools/bench.py --device cuda`. Everything goes under $OUT (the device tool's output folder;
# ./gpu-check-out otherwise), with summary.md last. Time limits: LT_GPU_BUDGET_S (default 540)
# for the whole, of which the build may take LT_GPU_BUILD_S (240) and the bench LT_GPU_BENCH_S
# (120). LT_LIBCUDA_DIR names a folder with a libcuda.so to link against where the driver's is
# not found (a stub: to check the build on a machine without a driver).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIST="${LT_GPU_DIST:-$ROOT/.whl/cuda}"
PY="${PYTHON:-python3}"
PY_TAG=312

if [ "${1:-}" = "--fetch" ]; then
    mkdir -p "$DIST"
    python -m pip download --no-binary pycuda --no-deps -d "$DIST" pycuda || exit 1
    python -m pip download -d "$DIST" --only-binary=:all: --python-version "$PY_TAG" \
        --implementation cp --platform manylinux2014_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        pytools platformdirs mako markupsafe siphash24 typing_extensions \
        setuptools wheel numpy ml_dtypes networkx graphviz pytest hypothesis || exit 1
    du -sh "$DIST"
    ls "$DIST"
    exit 0
fi

OUT="${OUT:-$ROOT/gpu-check-out}"
mkdir -p "$OUT"
START=$(date +%s)
BUDGET="${LT_GPU_BUDGET_S:-540}"
SUMMARY="$OUT/summary.md"
: > "$OUT/summary.body"
note() { echo "$*" | tee -a "$OUT/summary.body"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

note "## lazytorch GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
note "- machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none') ; $(nproc) cores"
note "- python: $($PY --version 2>&1) ; nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo none) ; gcc: $(gcc -dumpfullversion 2>/dev/null || echo none)"
note "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# ------------------------------------------------------------------ dependencies
declare -A PKG=([numpy]=numpy [ml_dtypes]=ml_dtypes [networkx]=networkx [graphviz]=graphviz
                [pytest]=pytest [pytools]=pytools [platformdirs]=platformdirs [mako]=mako
                [markupsafe]=markupsafe [siphash24]=siphash24 [setuptools]=setuptools
                [wheel]=wheel [typing_extensions]=typing_extensions [hypothesis]=hypothesis)
have=() missing=()
for mod in numpy ml_dtypes networkx graphviz pytest pytools platformdirs mako markupsafe \
           siphash24 setuptools wheel typing_extensions hypothesis; do
    if $PY -c "import $mod" 2>/dev/null; then have+=("$mod"); else missing+=("${PKG[$mod]}"); fi
done
note "- the image has: ${have[*]:-nothing}"
note "- missing: ${missing[*]:-nothing}"
if [ ${#missing[@]} -gt 0 ]; then
    if [ -d "$DIST" ]; then
        $PY -m pip install --no-index --find-links "$DIST" "${missing[@]}" \
            > "$OUT/deps-install.log" 2>&1 \
            && note "- installed from $DIST: ${missing[*]}" \
            || note "- FAILED to install some of ${missing[*]} from $DIST (deps-install.log)"
    else
        note "- no dist folder at $DIST: run 'bash tools/gpu_check.sh --fetch' where the index is reachable, and carry .whl"
    fi
fi

# ------------------------------------------------------------------ pycuda
pycuda_ok() { $PY -c "import pycuda.driver as d; d.init(); print(d.Device(0).name())" 2>&1; }
if out=$(pycuda_ok); then
    note "- pycuda: already installed ($($PY -c 'import pycuda; print(pycuda.VERSION_TEXT)'); device: $out)"
else
    note "- pycuda: not usable as installed ($(echo "$out" | tail -1)); building from the sdist"
    SDIST=$(ls "$DIST"/pycuda-*.tar.gz 2>/dev/null | tail -1)
    if [ -z "$SDIST" ]; then
        note "- no pycuda sdist in $DIST"
    else
        BUILD=$(mktemp -d)
        tar xzf "$SDIST" -C "$BUILD"
        SRC=$(ls -d "$BUILD"/pycuda-*/ | head -1)
        # the toolkit's root (its include/cuda.h): $CUDA_HOME, $CUDA_PATH, else nvcc's real
        # folder's parent (nvcc on PATH may be a link from /usr/local/bin), else /usr/local/cuda
        CUDA_ROOT=""
        for c in "${CUDA_HOME:-}" "${CUDA_PATH:-}" \
                 "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")" /usr/local/cuda; do
            if [ -n "$c" ] && [ -f "$c/include/cuda.h" ]; then CUDA_ROOT="$c"; break; fi
        done
        note "- CUDA toolkit for the build: ${CUDA_ROOT:-none found (no include/cuda.h)}"
        # the driver library to link: libcuda.so if a folder has it, else a folder of our own
        # with libcuda.so -> the driver's libcuda.so.1 (the toolkit here has no stubs)
        LIBCUDA=$( (ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}') )
        LIBDIR="$BUILD/libcuda"
        mkdir -p "$LIBDIR"
        [ -n "$LIBCUDA" ] && ln -sf "$LIBCUDA" "$LIBDIR/libcuda.so"
        EXTRA_DIR=""
        [ -n "${LT_LIBCUDA_DIR:-}" ] && EXTRA_DIR=", \"$LT_LIBCUDA_DIR\""
        cat > "$SRC/siteconf.py" <<EOF
CUDA_ROOT = "$CUDA_ROOT"
CUDA_ENABLE_CURAND = False
CUDADRV_LIB_DIR = ["$LIBDIR", "$CUDA_ROOT/lib64", "$CUDA_ROOT/lib64/stubs"$EXTRA_DIR]
EOF
        printf '\n[build_ext]\nparallel = %s\n' "$(nproc)" >> "$SRC/setup.cfg"
        t0=$(date +%s)
        # (LDFLAGS from the environment come before the libraries on the link line: the
        # extension keeps its link to libcuda.so.1 even when built against a stub)
        if (cd "$SRC" && LDFLAGS="-Wl,--no-as-needed ${LDFLAGS:-}" \
                timeout "${LT_GPU_BUILD_S:-240}" $PY -m pip install --no-index \
                --find-links "$DIST" --no-build-isolation . ) > "$OUT/pycuda-build.log" 2>&1; then
            note "- pycuda built and installed in $(( $(date +%s) - t0 )) s (cuRAND off)"
        else
            note "- pycuda build FAILED after $(( $(date +%s) - t0 )) s: $(tail -3 "$OUT/pycuda-build.log" | tr '\n' ' ')"
        fi
        if out=$(cd /tmp && pycuda_ok); then note "- pycuda imports; device: $out"; else
            note "- pycuda still fails: $(echo "$out" | tail -1)"; fi
    fi
fi

# ------------------------------------------------------------------ lazytorch on the GPU
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LAZYTORCH_CACHE_DIR="${LAZYTORCH_CACHE_DIR:-$OUT/cache}"
$PY - > "$OUT/device.txt" 2>&1 <<'EOF'
import lazytorch as torch
print("is_available:", torch.cuda.is_available(), "devices:", torch.cuda.device_count())
print("device:", torch.cuda.get_device_name(), torch.cuda.get_device_capability())
x = torch.arange(10.0, device="cuda")
print("arange*2+1 on cuda:", (x * 2 + 1).sum().item(), "(expected 100.0)")
EOF
note "- lazytorch: $(tr '\n' ';' < "$OUT/device.txt" | tail -c 600)"

run_pytest() {   # name, seconds, pytest args...
    local name=$1 secs=$2; shift 2
    if [ "$secs" -lt 20 ]; then note "- $name: not run (out of time)"; return; fi
    timeout "$secs" $PY -m pytest -q -p no:cacheprovider --junitxml="$OUT/$name.xml" "$@" \
        > "$OUT/$name.log" 2>&1
    local rc=$?
    local last; last=$(grep -E "passed|failed|error|skipped" "$OUT/$name.log" | tail -1)
    [ "$rc" -eq 124 ] && last="timed out after $secs s; $(grep -c PASSED "$OUT/$name.log" || true) passed so far"
    note "- $name (rc $rc): $last"
    grep -E "^(FAILED|ERROR) " "$OUT/$name.log" | head -20 | sed 's/^/    /' | tee -a "$OUT/summary.body"
}
BENCH_S="${LT_GPU_BENCH_S:-120}"
run_pytest pytest-cuda-direct $(( $(left) - BENCH_S - 60 )) -m cuda tests/test_cuda_gpu.py \
    -k "not test_suite_on_cuda"
run_pytest pytest-cuda-suites $(( $(left) - BENCH_S )) -m cuda -rf tests/test_cuda_gpu.py \
    -k test_suite_on_cuda
run_pytest pytest-cuda-other $(( $(left) - BENCH_S )) -m cuda --continue-on-collection-errors tests \
    --deselect tests/test_cuda_gpu.py

# ------------------------------------------------------------------ bench
secs=$(left)
[ "$secs" -gt "$BENCH_S" ] && secs=$BENCH_S
if [ "$secs" -ge 20 ]; then
    timeout "$secs" $PY tools/bench.py --device cuda > "$OUT/bench.txt" 2>&1
    note "- tools/bench.py --device cuda (rc $?):"
    tail -25 "$OUT/bench.txt" | sed 's/^/    /' | tee -a "$OUT/summary.body"
else
    note "- bench: not run (out of time)"
fi
note "- total: $(( $(date +%s) - START )) s"
mv "$OUT/summary.body" "$SUMMARY"
echo "summary: $SUMMARY"
