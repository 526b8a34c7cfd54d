#!/usr/bin/env bash
# GPU validation in one go, for a machine with one NVIDIA GPU (H100 first), CUDA 13, PyTorch,
# cmake and ninja; no MPI and no internet needed. Each step logs to its own file and the run goes
# on when a step fails; summary.md (scripts/gpu_summary.py) puts everything side by side:
#   build (or a carried build dir) -> ob_cuda_tests -> bench_cuda (cuBLASLt GEMM TFLOP/s, copy
#   proxy vs cudaMemcpy) -> torch.matmul / torch copy on the same shapes -> loopback `pair` and
#   `layer` sweeps over CDMC x order x SM margin, each beside the simulator's prediction of the
#   same cases -> single-rank NCCL `coll` -> two ranks on one GPU (NCCL >= 2.30 only) -> a
#   scaled-down training `step` on the GPU (one rank, no mpirun: pp 1, tp 1) beside the
#   simulator's -> compute-sanitizer memcheck on a short run -> summary.md
#
# Usage: scripts/device_validate.sh [options]
#   --build-dir DIR   build folder (default: build-gpu); a carried folder holding overlap-bench,
#                     bench_cuda and ob_cuda_tests is used as is when --skip-build is given
#   --skip-build      do not configure or build; use the binaries in --build-dir
#   --out DIR         results folder (default: results/gpu/<date>-<gpu>)
#   --archive FILE    also pack the results folder into FILE (.tar.gz); under the device tool
#                     use --archive "$OUT/gpu_results.tar.gz" (few files come back from $OUT)
#   --only a,b,...    run only these steps;  --skip a,b,...  skip these steps
#   --quick           smaller sweeps and fewer benchmarks (about 3 minutes after the build)
#   --step-timeout S  limit for each step in seconds (default 900)
#   --dry-run         print the steps and their commands, run nothing, write nothing
#   --pack DIR        (build machine, then exit) copy overlap-bench, bench_cuda and
#                     ob_cuda_tests from --build-dir into DIR, with their non-system shared
#                     libraries (e.g. libbenchmark) in DIR/devlibs: a few MiB to carry to the GPU
#                     machine (name DIR /build-.../ so git ignores it), then run there with
#                     --build-dir DIR --skip-build. Build it with -DOB_WITH_MPI=OFF.
#   -h, --help
# Steps: env build unit bench torch pair_loopback pair_sim pair_graphs layer_loopback layer_sim
#        coll_nccl1 coll_nccl2 step_cuda step_sim sanitizer summary
# Exit code: 0 when every step passed (or failed as expected), 1 otherwise.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$root/build-gpu"
skip_build=0
out_dir=""
archive=""
only=""
skip=""
quick=0
step_timeout=900
dry_run=0
pack_dir=""
all_steps="env build unit bench torch pair_loopback pair_sim pair_graphs layer_loopback layer_sim coll_nccl1 coll_nccl2 step_cuda step_sim sanitizer summary"

usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "device_validate: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a folder"; build_dir=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out_dir=$2; shift 2 ;;
    --archive) [ $# -ge 2 ] || die "--archive needs a file"; archive=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || die "--only needs a step list"; only=$2; shift 2 ;;
    --skip) [ $# -ge 2 ] || die "--skip needs a step list"; skip=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --step-timeout) [ $# -ge 2 ] || die "--step-timeout needs seconds"; step_timeout=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --pack) [ $# -ge 2 ] || die "--pack needs a folder"; pack_dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$step_timeout" in ''|*[!0-9]*) die "--step-timeout: expected whole seconds, got '$step_timeout'" ;; esac
for s in ${only//,/ } ${skip//,/ }; do
  case " $all_steps " in *" $s "*) ;; *) die "unknown step '$s' (steps: $all_steps)" ;; esac
done
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

# Binaries may sit at the top of a carried folder or where CMake puts them.
find_bin() {
  local name=$1
  for p in "$build_dir/$name" "$build_dir/tests/$name" "$build_dir/bench/$name"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  echo "$build_dir/$name"
  return 1
}

if [ -n "$pack_dir" ]; then
  mkdir -p "$pack_dir/devlibs" || die "cannot create $pack_dir"
  for name in overlap-bench libob_cuda_backend.so bench_cuda ob_cuda_tests; do
    bin=$(find_bin "$name") || { echo "device_validate: no $name in $build_dir" >&2; continue; }
    cp -f "$bin" "$pack_dir/" && echo "packed $bin"
    # Everything but glibc, the C++ runtime and CUDA/driver libraries, which the GPU machine has.
    ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
      case "$lib" in
        /usr/local/cuda*|*/libcuda.so*|*/libnvidia*|*/libnccl*|*/libcublas*|*/libcudart*) continue ;;
        */libc.so*|*/libm.so*|*/libdl.so*|*/librt.so*|*/libpthread.so*|*/libgcc_s.so*|*/libstdc++.so*|*/ld-linux*) continue ;;
      esac
      cp -L -n "$lib" "$pack_dir/devlibs/" && echo "packed $lib"
    done
  done
  exit 0
fi

gpu_name="unknown-gpu"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$gpu_name" ] || gpu_name="unknown-gpu"
fi
gpu_slug=$(echo "$gpu_name" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
stamp=$(date +%Y-%m-%d)
[ -n "$out_dir" ] || out_dir="$root/results/gpu/$stamp-$gpu_slug"
case "$out_dir" in /*) ;; *) out_dir="$PWD/$out_dir" ;; esac

want() {
  local s=$1
  if [ -n "$only" ]; then case ",$only," in *",$s,"*) ;; *) return 1 ;; esac; fi
  case ",$skip," in *",$s,"*) return 1 ;; esac
  return 0
}

if [ "$dry_run" = 0 ]; then
  mkdir -p "$out_dir" || die "cannot create $out_dir"
  steps_file="$out_dir/steps.tsv"
  printf '# step\tstatus\texit\tseconds\tlog\tnote\n' >"$steps_file"
fi
failures=0

record() {  # name status rc seconds log note
  [ "$dry_run" = 1 ] && return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$steps_file"
}

# run_step NAME [EXPECTED_FAILURE_PATTERN] -- command...: logs to NAME.log, never aborts the run.
# A failure whose log matches the pattern is recorded as an expected failure (a documented
# limitation of this machine's library versions, not a bug).
run_step() {
  local name=$1; shift
  local expect=""
  if [ "$1" != "--" ]; then expect=$1; shift; fi
  shift  # --
  if ! want "$name"; then record "$name" skipped "" "" "" "not selected"; return 0; fi
  if [ "$dry_run" = 1 ]; then printf '[%s] %s\n' "$name" "$*"; return 0; fi
  local log="$out_dir/$name.log"
  echo "== $name: $*" >&2
  local t0 t1 rc status note=""
  t0=$(date +%s.%N)
  { echo "\$ $*"; timeout --kill-after=30 "$step_timeout" "$@"; } >"$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [ $rc -eq 0 ]; then
    status=ok
  elif [ -n "$expect" ] && grep -qE "$expect" "$log"; then
    status=expected-failure
    note=$(grep -m1 -oE "$expect.{0,120}" "$log" | tr '\t' ' ')
  else
    status=failed
    failures=$((failures + 1))
    if [ $rc -eq 124 ]; then
      note="timed out after ${step_timeout}s"
    else
      # The last line that says "error" explains more than the last line of JSON does.
      note=$(grep -iE 'error|fail' "$log" | tail -n 1 | cut -c1-160 | tr '\t' ' ')
      [ -n "$note" ] || note=$(tail -n 1 "$log" | cut -c1-160 | tr '\t' ' ')
    fi
  fi
  record "$name" "$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$(basename "$log")" "$note"
  echo "== $name: $status (exit $rc)" >&2
  return 0
}

skip_step() {  # name reason
  want "$1" || { record "$1" skipped "" "" "" "not selected"; return 0; }
  [ "$dry_run" = 1 ] && { printf '[%s] skipped: %s\n' "$1" "$2"; return 0; }
  record "$1" skipped "" "" "" "$2"
  echo "== $1: skipped ($2)" >&2
}

# --- libraries for carried binaries ------------------------------------------------------------
[ -d "$build_dir/devlibs" ] && export LD_LIBRARY_PATH="$build_dir/devlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Carried binaries cannot find configs/ beside a build tree that is not there.
export OVERLAP_BENCH_CONFIGS="${OVERLAP_BENCH_CONFIGS:-$root/configs}"
py=python3
add_pip_lib() {  # python package whose lib/ folder holds a library the binaries need
  local dir
  dir=$("$py" - "$1" 2>/dev/null <<'EOF'
import importlib, os, sys
try:
    m = importlib.import_module(sys.argv[1])
    paths = list(getattr(m, "__path__", [])) or [os.path.dirname(m.__file__)]
    print(os.path.join(paths[0], "lib"))
except Exception:
    pass
EOF
)
  [ -n "$dir" ] && [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
fix_libs() {
  local bin=$1
  [ -x "$bin" ] || return 0
  if ldd "$bin" 2>/dev/null | grep -q 'libnccl.so.2 => not found'; then add_pip_lib nvidia.nccl; fi
  if ldd "$bin" 2>/dev/null | grep -q 'libcublasLt.so.13 => not found'; then add_pip_lib nvidia.cublas; fi
  if ldd "$bin" 2>/dev/null | grep -q 'libcudart.so.13 => not found'; then add_pip_lib nvidia.cuda_runtime; fi
}

# --- env ---------------------------------------------------------------------------------------
if want env && [ "$dry_run" = 0 ]; then
  {
    nvidia-smi 2>&1 || true
    nvidia-smi -q -d CLOCK,PERFORMANCE,POWER 2>&1 || true
    nvcc --version 2>&1 || true
    cmake --version 2>&1 | head -1 || true
    env | grep -E '^(CUDA_|NCCL_|NVTE_|LD_LIBRARY_PATH)' || true
  } >"$out_dir/env.log" 2>&1
  "$py" - "$out_dir/env.json" "$gpu_name" "$stamp" "$root" <<'EOF' >>"$out_dir/env.log" 2>&1
import json, os, socket, subprocess, sys
out, gpu, date, root = sys.argv[1:5]
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return ""
env = {"gpu": gpu, "date": date, "host": socket.gethostname()}
env["driver"] = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).splitlines()[0:1]
env["driver"] = env["driver"][0] if env["driver"] else ""
nv = run(["nvcc", "--version"]).splitlines()
env["nvcc"] = nv[-1] if nv else ""
env["git_sha"] = run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"])
try:
    import torch
    env["torch"] = torch.__version__
    env["cuda"] = torch.version.cuda
    env["nccl"] = ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else ""
except Exception as e:
    env["torch"] = f"unavailable ({e})"
with open(out, "w") as f:
    json.dump(env, f, indent=2)
EOF
  record env ok 0 "" env.log ""
elif [ "$dry_run" = 1 ]; then
  want env && echo "[env] nvidia-smi, nvcc --version, python facts -> env.json"
else
  record env skipped "" "" "" "not selected"
fi

# --- build -------------------------------------------------------------------------------------
if [ "$skip_build" = 1 ]; then
  skip_step build "--skip-build: using $build_dir"
elif [ -x "$build_dir/overlap-bench" ] && [ ! -f "$build_dir/build.ninja" ] && [ ! -f "$build_dir/Makefile" ]; then
  skip_step build "carried binaries in $build_dir (no build files)"
else
  run_step build -- bash -c "cmake -S '$root' -B '$build_dir' -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DOB_WITH_MPI=OFF -DOB_WITH_CUDA=ON -DOB_WITH_BENCH=AUTO && \
    ninja -C '$build_dir' -j\$(nproc) overlap-bench ob_cuda_backend bench_cuda ob_cuda_tests"
fi

ob=$(find_bin overlap-bench); have_ob=$?
bench=$(find_bin bench_cuda); have_bench=$?
tests=$(find_bin ob_cuda_tests); have_tests=$?
[ "$dry_run" = 1 ] && { have_ob=0; have_bench=0; have_tests=0; }
for b in "$ob" "$bench" "$tests"; do fix_libs "$b"; done

# --- steps -------------------------------------------------------------------------------------
if [ $have_tests -eq 0 ]; then
  run_step unit -- "$tests" --gtest_brief=1
else
  skip_step unit "no ob_cuda_tests in $build_dir"
fi

if [ $have_bench -eq 0 ]; then
  filter="."
  [ "$quick" = 1 ] && filter='gemm/(square8192|gpt3_.*)/bf16$|copy_proxy/1GiB/ctas(8|16|132)$|memcpy_d2d|layernorm/.*margin(0|32)$|pair/.*ctas16$'
  run_step bench -- "$bench" --benchmark_filter="$filter" --benchmark_format=json \
    --benchmark_out="$out_dir/bench.json" --benchmark_out_format=json
else
  skip_step bench "no bench_cuda in $build_dir (Google Benchmark missing at build time?)"
fi

run_step torch -- "$py" "$root/scripts/validate_torch.py" --out "$out_dir/torch.json"

if [ "$quick" = 1 ]; then
  cdmcs="1,8"; margins="0,32"; iters=(--iters 10 --warmup 3)
else
  cdmcs="1,8,32"; margins="0,16,32"; iters=()
fi
pair_args=(pair --gemm 8192x8192x8192 --dtype bf16 --coll all_gather --bytes 256MiB --ranks 8
           --cdmc "$cdmcs" --order comm_first,gemm_first --sm-margin "$margins")
# The CUDA executor cannot enforce TE's launch-ordering edges (NCCL launches its own kernels),
# so the simulator's prediction beside each loopback case runs without them too.
layer_args=(run --config "$root/configs/scenarios/default_layer.json" --set "cdmc=$cdmcs"
            --set "sm_margin=$margins" --set te_launch_ordering=off)
# A training step scaled down to one GPU: one rank runs the whole pipeline (pp 1, tp 1), so the
# binary runs without mpirun (world size 1); --layers keeps its buffers well inside the GPU.
# CDMC 8 is the launcher rule's value without TP or CP, and the process's default.
step_args=(step --model gpt3_20b --gpus 1 --tp 1 --pp 1 --layers 2 --gbs 4 --seq 2048 --cdmc 8
           --te-launch-ordering off)

if [ $have_ob -eq 0 ]; then
  run_step pair_loopback -- "$ob" "${pair_args[@]}" --backend loopback "${iters[@]}" -q \
    --json "$out_dir/pair_loopback.json"
  run_step pair_sim -- "$ob" "${pair_args[@]}" --backend sim -q --json "$out_dir/pair_sim.json"
  run_step pair_graphs -- "$ob" "${pair_args[@]}" --backend loopback --graphs "${iters[@]}" -q \
    --json "$out_dir/pair_graphs_loopback.json"
  run_step layer_loopback -- "$ob" "${layer_args[@]}" --backend loopback "${iters[@]}" -q \
    --json "$out_dir/layer_loopback.json"
  run_step layer_sim -- "$ob" "${layer_args[@]}" --backend sim -q --json "$out_dir/layer_sim.json"
  # Single-rank NCCL: a real communicator of one rank, every collective verified element-wise.
  run_step coll_nccl1 -- bash -c "for op in all_gather reduce_scatter all_reduce; do \
    '$ob' coll --backend cuda --gpus 1 --ranks 1 --op \$op --min 1MiB --max 256MiB --factor 4 \
      --json '$out_dir/coll_nccl1_'\$op'.json' || exit \$?; done"
  run_step step_cuda -- "$ob" "${step_args[@]}" --backend cuda "${iters[@]}" \
    --json "$out_dir/step_cuda.json" --trace "$out_dir/step_cuda_trace.json"
  run_step step_sim -- "$ob" "${step_args[@]}" --backend sim --json "$out_dir/step_sim.json"
  # Two ranks on one GPU: NCCL allows it from 2.30 (NCCL_MULTI_RANK_GPU_ENABLE=1); older
  # libraries refuse, which the executor reports as a clear runtime failure.
  run_step coll_nccl2 "needs NCCL >= 2.30" -- "$ob" coll --backend cuda --gpus 2 --ranks 2 \
    --op all_reduce --min 1MiB --max 64MiB --factor 4 --json "$out_dir/coll_nccl2_all_reduce.json"
  if command -v compute-sanitizer >/dev/null 2>&1 || [ "$dry_run" = 1 ]; then
    run_step sanitizer -- bash -c "compute-sanitizer --tool memcheck --error-exitcode 9 \
      '$ob' pair --backend loopback --gemm 1024x1024x1024 --coll all_gather --bytes 8MiB \
      --ranks 8 --comm-waits-on-producer 20 --iters 2 --warmup 1 -q > '$out_dir/sanitizer.log' 2>&1; \
      rc=\$?; tail -n 5 '$out_dir/sanitizer.log'; exit \$rc"
  else
    skip_step sanitizer "compute-sanitizer not on PATH"
  fi
else
  for s in pair_loopback pair_sim pair_graphs layer_loopback layer_sim coll_nccl1 coll_nccl2 step_cuda step_sim sanitizer; do
    skip_step "$s" "no overlap-bench in $build_dir"
  done
fi

run_step summary -- "$py" "$root/scripts/gpu_summary.py" --dir "$out_dir"

if [ "$dry_run" = 1 ]; then
  echo "results would go to $out_dir"
  exit 0
fi
if [ -n "$archive" ]; then
  mkdir -p "$(dirname "$archive")"
  tar -czf "$archive" -C "$(dirname "$out_dir")" "$(basename "$out_dir")" &&
    echo "device_validate: packed $out_dir into $archive" >&2
  cp "$out_dir/summary.md" "$(dirname "$archive")/summary.md" 2>/dev/null || true
fi
[ -f "$out_dir/summary.md" ] && cat "$out_dir/summary.md"
echo "device_validate: results in $out_dir ($failures failed step(s))" >&2
[ $failures -eq 0 ]
