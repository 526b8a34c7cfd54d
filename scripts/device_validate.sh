#!/usr/bin/env bash
# GPU validation in one go, for a machine with one NVIDIA GPU (H100 first), CUDA 13 and PyTorch;
# no MPI, no internet and no build needed there. The path that fits a 15-minute device lease
# (README "On a GPU"):
#   1. here:      scripts/device_validate.sh --pack      build without MPI, pack build-devpack/pack
#   2. on the GPU: the command --plan prints             (carry build-devpack/pack; under 5 min)
#   3. here:      unpack the returned archive into results/gpu/ and commit it
# Each step logs to its own file, is limited to --step-timeout seconds and never stops the run;
# after every step summary.md (scripts/gpu_summary.py) and the --archive are rewritten, so a
# killed run still returns everything finished so far.
#
# Usage: scripts/device_validate.sh [options]
#   --plan            print the device command (carry list, timeout_s) and the expected seconds
#                     of each step; run nothing
#   --pack [DIR]      configure build-devpack without MPI, build overlap-bench, its CUDA plugin,
#                     bench_cuda and ob_cuda_tests, copy them into DIR (default
#                     build-devpack/pack) with their non-system libraries in DIR/devlibs, check
#                     them with ldd; then exit
#   --dry-run         no GPU needed: run every step that does not need one for real (env, pack,
#                     unit, bench_list, the sim twins, calibrate, layout), put fixtures
#                     (tests/data/gpu_results) where the GPU steps' outputs go, write and check
#                     the archive; results go under build-devpack/dry-run, never results/gpu
#   --build-dir DIR   binaries (default: build-gpu; with --skip-build a carried folder such as
#                     build-devpack/pack)
#   --skip-build      do not configure or build; use the binaries in --build-dir
#   --out DIR         results folder (default: results/gpu/<date>-<gpu>)
#   --archive FILE    pack the results folder into FILE (.tar.gz) after every step; beside it
#                     go summary.md and steps.tsv (under the device tool: "$OUT/gpu_results.tar.gz")
#   --only a,b,...    run only these steps;  --skip a,b,...  skip these steps
#   --quick           smaller sweeps and benchmarks: the lease path (about 4.5 minutes)
#   --step-timeout S  limit for each step in seconds (default 90 with --quick, else 600); the step
#                     is killed 10 s after it
#   --deadline S      steps not started S seconds after the run began are skipped, so the summary
#                     and the archive are still written inside the lease
#   --bench-filter    print the Google Benchmark filter the bench step uses, and exit
#   -h, --help
# Steps, in order: env build unit bench_list bench torch pair_sim pair_loopback layer_sim
#   layer_loopback coll_nccl1 step_sim step_cuda pair_graphs coll_nccl2 sanitizer calibrate layout
# Exit code: 0 when every step passed (or failed as expected), 1 otherwise, 2 for bad arguments.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/device_libs.sh
. "$root/scripts/device_libs.sh"
build_dir="$root/build-gpu"
build_dir_given=0
skip_build=0
out_dir=""
archive=""
only=""
skip=""
quick=0
step_timeout=""
deadline=0
mode=run
pack_dir="$root/build-devpack/pack"
pack_build="$root/build-devpack"
all_steps="env build unit bench_list bench torch pair_sim pair_loopback layer_sim layer_loopback coll_nccl1 step_sim step_cuda pair_a2a step_moe pair_mxfp8 pair_graphs coll_nccl2 sanitizer calibrate layout"
# The lease path's expected seconds per step (--quick on one H100). Estimates until a GPU run
# has timed them: its steps.tsv then holds the real seconds.
declare -A expect_s=([env]=5 [build]=0 [unit]=15 [bench_list]=1 [bench]=50 [torch]=25 [pair_sim]=1
  [pair_loopback]=20 [layer_sim]=1 [layer_loopback]=30 [coll_nccl1]=15 [step_sim]=1 [step_cuda]=25
  [pair_a2a]=8 [step_moe]=15 [pair_mxfp8]=4
  [pair_graphs]=20 [coll_nccl2]=10 [sanitizer]=45 [calibrate]=2 [layout]=5)
# What the device tool is given (scripts/device_validate.sh --plan).
device_deadline=270
device_timeout_s=420

usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "device_validate: $*" >&2; exit 2; }

bench_filter() {
  if [ "$quick" = 1 ]; then
    # Names end in /min_time:0.300/manual_time (bench_cuda --benchmark_list_tests): anchor on
    # the front and on whole path parts, never on the end.
    echo '^(gemm/|copy_proxy/1GiB/ctas(8|16|132)/|memcpy_d2d/|layernorm/2048x12288/margin(0|32)/|pair/gemm8192_copy256MiB/ctas16/)'
  else
    echo '.'
  fi
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --build-dir) [ $# -ge 2 ] || die "--build-dir needs a folder"; build_dir=$2; build_dir_given=1; shift 2 ;;
      --skip-build) skip_build=1; shift ;;
      --out) [ $# -ge 2 ] || die "--out needs a folder"; out_dir=$2; shift 2 ;;
      --archive) [ $# -ge 2 ] || die "--archive needs a file"; archive=$2; shift 2 ;;
      --only) [ $# -ge 2 ] || die "--only needs a step list"; only=$2; shift 2 ;;
      --skip) [ $# -ge 2 ] || die "--skip needs a step list"; skip=$2; shift 2 ;;
      --quick) quick=1; shift ;;
      --step-timeout) [ $# -ge 2 ] || die "--step-timeout needs seconds"; step_timeout=$2; shift 2 ;;
      --deadline) [ $# -ge 2 ] || die "--deadline needs seconds"; deadline=$2; shift 2 ;;
      --plan) mode=plan; shift ;;
      --dry-run) mode=dry; shift ;;
      --bench-filter) mode=filter; shift ;;
      --pack)
        mode=pack
        if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then pack_dir=$2; shift; fi
        shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
  done
  [ -n "$step_timeout" ] || { [ "$quick" = 1 ] && step_timeout=90 || step_timeout=600; }
  case "$step_timeout" in ''|*[!0-9]*) die "--step-timeout: expected whole seconds, got '$step_timeout'" ;; esac
  case "$deadline" in ''|*[!0-9]*) die "--deadline: expected whole seconds, got '$deadline'" ;; esac
  [ "$step_timeout" -ge 1 ] && [ "$step_timeout" -le 600 ] ||
    die "--step-timeout: $step_timeout is outside 1..600 (the device tool stops a command at 600 s)"
  local s
  for s in ${only//,/ } ${skip//,/ }; do
    case " $all_steps " in *" $s "*) ;; *) die "unknown step '$s' (steps: $all_steps)" ;; esac
  done
  case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
  case "$pack_dir" in /*) ;; *) pack_dir="$PWD/$pack_dir" ;; esac
}

parse_args "$@"

if [ "$mode" = filter ]; then bench_filter; exit 0; fi

print_plan() {
  local total=0 s
  echo "Device validation on a lent GPU (README \"On a GPU\"): three commands, one device call."
  echo
  echo "1. Here, once (builds without MPI, packs about 15 MiB):"
  echo "     scripts/device_validate.sh --pack"
  echo "2. The device tool's run, with these arguments:"
  echo "     command:   scripts/device_validate.sh --skip-build --build-dir build-devpack/pack --quick --deadline $device_deadline --archive \"\$OUT/gpu_results.tar.gz\""
  echo "     carry:     [\"build-devpack/pack\"]"
  echo "     timeout_s: $device_timeout_s"
  echo "   then give_back unless you rerun at once."
  echo "3. Here, with the files_at folder the reply names:"
  echo "     mkdir -p results/gpu && tar -xzf <files_at>/gpu_results.tar.gz -C results/gpu"
  echo "     git add results/gpu && git commit -m 'GPU evidence: <gpu>, <date>'"
  echo
  echo "Expected seconds per step with --quick on one H100 (estimates: no GPU run has timed them"
  echo "yet; a run's steps.tsv holds the real seconds):"
  for s in $all_steps; do
    [ "$s" = build ] && continue
    printf '  %-15s %4s s\n' "$s" "${expect_s[$s]}"
    total=$((total + expect_s[$s]))
  done
  printf '  %-15s %4s s (%s min; %s)\n' total "$total" "$(awk -v t="$total" 'BEGIN { printf "%.1f", t / 60 }')" \
    "$([ "$total" -lt 300 ] && echo "under 5 min" || echo "OVER 5 min: trim --quick")"
  echo
  echo "Limits: each step ${step_timeout:-90} s, killed 10 s later; every overlap-bench call has --timeout 60"
  echo "(a hung NCCL op exits 4 in a minute); steps not started by ${device_deadline} s are skipped;"
  echo "the archive is rewritten after every step, so the device call's timeout still returns it."
}

if [ "$mode" = plan ]; then quick=1; step_timeout=90; print_plan; exit 0; fi

# --- packing (build machine) --------------------------------------------------------------------
pack_binaries() {  # out_folder: configure and build build-devpack without MPI, copy, check
  local dest=$1 bin lib
  local pb=$pack_build
  [ "$build_dir_given" = 1 ] && pb=$build_dir
  cmake -S "$root" -B "$pb" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOB_WITH_MPI=OFF \
    -DOB_WITH_CUDA=ON -DOB_WITH_BENCH=ON >"$pb.configure.log" 2>&1 ||
    { cat "$pb.configure.log" >&2; echo "pack: configure failed" >&2; return 1; }
  cmake --build "$pb" -j "${OB_JOBS:-$(nproc)}" --target overlap-bench ob_cuda_backend bench_cuda \
    ob_cuda_tests || { echo "pack: build failed" >&2; return 1; }
  rm -rf "$dest" && mkdir -p "$dest/devlibs" || { echo "pack: cannot create $dest" >&2; return 1; }
  for bin in "$pb/overlap-bench" "$pb/libob_cuda_backend.so" "$pb/bench_cuda" "$pb/tests/ob_cuda_tests"; do
    [ -e "$bin" ] || { echo "pack: $bin was not built" >&2; return 1; }
    cp -f "$bin" "$dest/" && echo "packed $(basename "$bin")"
    # Everything but glibc, the C++ runtime and the CUDA/driver libraries, which the GPU
    # machine has (device_libs.sh finds them there).
    ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
      case "$lib" in
        /usr/local/cuda*|*/libcuda.so*|*/libnvidia*|*/libnccl*|*/libcublas*|*/libcudart*) continue ;;
        */libc.so*|*/libm.so*|*/libdl.so*|*/librt.so*|*/libpthread.so*|*/libgcc_s.so*|*/libstdc++.so*|*/ld-linux*) continue ;;
      esac
      cp -L -n "$lib" "$dest/devlibs/" && echo "packed $lib"
    done
  done
  check_pack "$dest"
}

check_pack() {  # folder: no MPI inside, every library found with devlibs first, size within carry
  local dest=$1 size
  if ldd "$dest"/* 2>/dev/null | grep -q 'libmpi'; then
    echo "pack: a packed binary links MPI; the GPU machine has none" >&2; return 1
  fi
  LD_LIBRARY_PATH="$dest/devlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" check_libs \
    "$dest/overlap-bench" "$dest/libob_cuda_backend.so" "$dest/bench_cuda" "$dest/ob_cuda_tests" ||
    { echo "pack: libraries missing even here" >&2; return 1; }
  size=$(du -sm "$dest" | awk '{print $1}')
  echo "pack: $dest holds $size MiB (the device tool carries at most 64 MiB with the tree)"
  [ "$size" -le 48 ] || { echo "pack: over 48 MiB, too large to carry" >&2; return 1; }
}

if [ "$mode" = pack ]; then
  pack_binaries "$pack_dir" || exit 1
  echo "device_validate: packed into $pack_dir; now run the command --plan prints on the GPU machine"
  exit 0
fi

# --- the run ------------------------------------------------------------------------------------
run_start=$(date +%s)
# The process's CUDA_DEVICE_MAX_CONNECTIONS is a swept knob (--cdmc): one inherited from the
# image would set every case's value behind the sweep's back.
inherited_cdmc=${CUDA_DEVICE_MAX_CONNECTIONS:-}
unset CUDA_DEVICE_MAX_CONNECTIONS

gpu_name="unknown-gpu"
if [ "$mode" = dry ]; then
  gpu_name="dry-run"
elif command -v nvidia-smi >/dev/null 2>&1; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$gpu_name" ] || gpu_name="unknown-gpu"
fi
gpu_slug=$(echo "$gpu_name" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
# The simulator's GPU file for this card: the sim twins, the prediction beside each measured case
# and calibrate --check must model the GPU that was measured (an H200 lease is as likely as an
# H100 one).
case "$gpu_slug" in
  *h200*) sim_gpu=h200 ;;
  *gb300*) sim_gpu=gb300 ;;
  *gb200*) sim_gpu=gb200 ;;
  *b300*) sim_gpu=b300 ;;
  *b200*) sim_gpu=b200 ;;
  *a100*) sim_gpu=a100_sxm ;;
  *) sim_gpu=h100_sxm ;;
esac
stamp=$(date +%Y-%m-%d)
if [ "$mode" = dry ]; then
  quick=1
  [ -n "$out_dir" ] || out_dir="$pack_build/dry-run/$stamp-dry-run"
  [ -n "$archive" ] || archive="$pack_build/dry-run/gpu_results.tar.gz"
  [ "$build_dir_given" = 1 ] || build_dir=$pack_dir
fi
[ -n "$out_dir" ] || out_dir="$root/results/gpu/$stamp-$gpu_slug"
case "$out_dir" in /*) ;; *) out_dir="$PWD/$out_dir" ;; esac
[ -z "$archive" ] || case "$archive" in /*) ;; *) archive="$PWD/$archive" ;; esac
# A rerun on the same day replaces an earlier run's files; any other non-empty folder is refused.
if [ -d "$out_dir" ] && [ -n "$(ls -A "$out_dir")" ]; then
  [ -f "$out_dir/steps.tsv" ] || die "--out $out_dir: not empty and not a results folder of this script"
  find "$out_dir" -maxdepth 1 -type f \( -name '*.json' -o -name '*.log' -o -name '*.tsv' \
    -o -name '*.md' -o -name '*.txt' \) -delete
fi
mkdir -p "$out_dir" || die "cannot create $out_dir"
steps_file="$out_dir/steps.tsv"
printf '# step\tstatus\texit\tseconds\tlog\tnote\n' >"$steps_file"
failures=0
py=python3

want() {
  local s=$1
  if [ -n "$only" ]; then case ",$only," in *",$s,"*) ;; *) return 1 ;; esac; fi
  case ",$skip," in *",$s,"*) return 1 ;; esac
  return 0
}

record() {  # name status rc seconds log note
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$steps_file"
}

# The summary and the archive after every step: what a killed run returns.
checkpoint() {
  "$py" "$root/scripts/gpu_summary.py" --dir "$out_dir" >/dev/null 2>&1
  [ -n "$archive" ] || return 0
  local dir
  dir=$(dirname "$archive")
  mkdir -p "$dir" || return 0
  tar -czf "$archive.tmp" -C "$(dirname "$out_dir")" "$(basename "$out_dir")" 2>/dev/null &&
    mv -f "$archive.tmp" "$archive"
  cp -f "$out_dir/summary.md" "$out_dir/steps.tsv" "$dir/" 2>/dev/null
  return 0
}

past_deadline() {
  [ "$deadline" -gt 0 ] && [ $(( $(date +%s) - run_start )) -ge "$deadline" ]
}

skip_step() {  # name reason
  want "$1" || { record "$1" skipped "" "" "" "not selected"; return 0; }
  record "$1" skipped "" "" "" "$2"
  echo "== $1: skipped ($2)" >&2
}

# run_step NAME [EXPECTED_FAILURE_PATTERN] -- command...: logs to NAME.log, never aborts the run.
# A failure whose log matches the pattern (grep -E) is an expected failure: a documented
# limitation of this machine's library versions, not a bug.
run_step() {
  local name=$1; shift
  local expect=""
  if [ "$1" != "--" ]; then expect=$1; shift; fi
  shift  # --
  if ! want "$name"; then record "$name" skipped "" "" "" "not selected"; return 0; fi
  # calibrate and layout take seconds and judge the archive: they run past the deadline.
  if past_deadline && [ "$name" != calibrate ] && [ "$name" != layout ]; then skip_step "$name" "--deadline ${deadline}s reached"; checkpoint; return 0; fi
  local log="$out_dir/$name.log"
  echo "== $name: $*" >&2
  local t0 t1 rc status note=""
  t0=$(date +%s.%N)
  { echo "\$ $*"; timeout --kill-after=10 "$step_timeout" "$@"; } >"$log" 2>&1
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
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      note="timed out after ${step_timeout}s"
    else
      # The last line that says "error" explains more than the last line of JSON does.
      note=$(grep -iE 'error|fail' "$log" | tail -n 1 | cut -c1-160 | tr '\t' ' ')
      [ -n "$note" ] || note=$(tail -n 1 "$log" | cut -c1-160 | tr '\t' ' ')
    fi
  fi
  record "$name" "$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$(basename "$log")" "$note"
  echo "== $name: $status (exit $rc)" >&2
  checkpoint
}

# In a dry run a step that needs the GPU puts the fixture of its output in place instead.
fixture_step() {  # name files...
  local name=$1; shift
  want "$name" || { record "$name" skipped "" "" "" "not selected"; return 0; }
  local f
  for f in "$@"; do cp -f "$root/tests/data/gpu_results/$f" "$out_dir/" || { record "$name" failed 1 "" "" "fixture $f missing"; failures=$((failures + 1)); return 0; }; done
  record "$name" fixture "" "" "" "dry run: tests/data/gpu_results/$* (not measured)"
  checkpoint
}

# gpu_step NAME FIXTURE_FILES [PATTERN] -- command...: the step (run_step's arguments), or its
# fixture in a dry run.
gpu_step() {
  local name=$1 files=$2; shift 2
  if [ "$mode" = dry ]; then
    # shellcheck disable=SC2086
    fixture_step "$name" $files
  else
    run_step "$name" "$@"
  fi
}

# --- env ----------------------------------------------------------------------------------------
capture_env() {
  {
    nvidia-smi 2>&1 || true
    nvidia-smi -q -d CLOCK,PERFORMANCE,POWER 2>&1 || true
    nvcc --version 2>&1 || true
    env | grep -E '^(CUDA_|NCCL_|NVTE_|LD_LIBRARY_PATH)' || true
    echo "inherited CUDA_DEVICE_MAX_CONNECTIONS='$inherited_cdmc' (unset for this run)"
  } >"$out_dir/env.log" 2>&1
  "$py" - "$out_dir/env.json" "$gpu_name" "$stamp" "$root" "$inherited_cdmc" "$mode" "$sim_gpu" <<'EOF' >>"$out_dir/env.log" 2>&1
import json, socket, subprocess, sys
out, gpu, date, root, cdmc, mode, sim_gpu = sys.argv[1:8]
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return ""
env = {"gpu": gpu, "date": date, "host": socket.gethostname(), "mode": mode,
       "inherited_cuda_device_max_connections": cdmc, "sim_gpu": sim_gpu}
drv = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).splitlines()
env["driver"] = drv[0] if drv else ""
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
}

if want env; then
  capture_env
  record env ok 0 "" env.log ""
  checkpoint
else
  record env skipped "" "" "" "not selected"
fi

# --- build or pack ------------------------------------------------------------------------------
have_nvcc=0
{ command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; } && have_nvcc=1
if [ "$mode" = dry ]; then
  if [ "$build_dir_given" = 1 ] || [ "$have_nvcc" = 0 ]; then
    skip_step build "dry run: no CUDA toolkit, or --build-dir given: using $build_dir"
  else
    # The pack is built outside the step timeout: a first build takes minutes on 2 cores.
    t0=$(date +%s)
    if pack_binaries "$pack_dir" >"$out_dir/build.log" 2>&1; then
      record build ok 0 "$(( $(date +%s) - t0 ))" build.log "dry run: packed $pack_dir"
    else
      record build failed 1 "$(( $(date +%s) - t0 ))" build.log "packing failed"
      failures=$((failures + 1))
    fi
    checkpoint
  fi
elif [ "$skip_build" = 1 ]; then
  skip_step build "--skip-build: using $build_dir"
else
  # Building on the GPU machine needs nlohmann-json, CLI11 and GoogleTest there (--pack avoids
  # that). Each target alone, so a missing Google Benchmark costs bench_cuda, not the rest.
  run_step build -- bash -c "cmake -S '$root' -B '$build_dir' -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DOB_WITH_MPI=OFF -DOB_WITH_CUDA=ON -DOB_WITH_BENCH=AUTO || exit \$?; rc=0; \
    for t in overlap-bench ob_cuda_backend ob_cuda_tests bench_cuda; do \
      ninja -C '$build_dir' -j\$(nproc) \$t || rc=1; done; exit \$rc"
fi

# Binaries sit at the top of a carried folder or where CMake puts them.
find_bin() {
  local name=$1 p
  for p in "$build_dir/$name" "$build_dir/tests/$name" "$build_dir/bench/$name"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  echo "$build_dir/$name"
  return 1
}
# A dry run without the CUDA toolkit has no pack: its sim steps use the main build.
if [ "$mode" = dry ] && [ ! -x "$build_dir/overlap-bench" ]; then build_dir="$root/build"; fi
ob=$(find_bin overlap-bench); have_ob=$?
bench=$(find_bin bench_cuda); have_bench=$?
tests=$(find_bin ob_cuda_tests); have_tests=$?
plugin="$(dirname "$ob")/libob_cuda_backend.so"

# --- libraries ------------------------------------------------------------------------------------
[ -d "$build_dir/devlibs" ] && prepend_ld_path "$build_dir/devlibs"
# Carried binaries cannot find configs/ beside a build tree that is not there.
export OVERLAP_BENCH_CONFIGS="${OVERLAP_BENCH_CONFIGS:-$root/configs}"
{
  resolve_missing_libs "$ob" "$plugin" "$bench" "$tests"
  resolve_dlopen_libs
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  for b in "$ob" "$plugin" "$bench" "$tests"; do [ -e "$b" ] && { echo "--- ldd $b"; ldd "$b"; }; done
} >"$out_dir/libs.log" 2>&1
if ! check_libs "$ob" "$plugin" "$bench" "$tests" >>"$out_dir/libs.log" 2>&1; then
  echo "device_validate: some libraries are missing (libs.log); the steps that need them will fail" >&2
fi

# --- steps --------------------------------------------------------------------------------------
common=(--timeout 60)
if [ "$quick" = 1 ]; then
  cdmcs="1,8"; margins="0,32"; iters=(--iters 10 --warmup 3)
else
  cdmcs="1,8,32"; margins="0,16,32"; iters=()
fi
pair_args=(pair --gpu "$sim_gpu" --gemm 8192x8192x8192 --dtype bf16 --coll all_gather --bytes 256MiB
           --ranks 8 --cdmc "$cdmcs" --order comm_first,gemm_first --sm-margin "$margins")
# The CUDA executor cannot enforce TE's launch-ordering edges (NCCL launches its own kernels),
# so the simulator's prediction beside each loopback case runs without them too.
layer_args=(run --config "$root/configs/scenarios/default_layer.json" --set "gpu=$sim_gpu"
            --set "cdmc=$cdmcs" --set "sm_margin=$margins" --set te_launch_ordering=off)
# A training step scaled down to one GPU: one rank runs the whole pipeline (pp 1, tp 1), so the
# binary runs without mpirun (world size 1); --layers keeps its buffers well inside the GPU.
# CDMC 8 is the launcher rule's value without TP or CP, and the process's default.
step_args=(step --gpu "$sim_gpu" --model gpt3_20b --gpus 1 --tp 1 --pp 1 --layers 2 --gbs 4
           --seq 2048 --cdmc 8 --te-launch-ordering off)
# MoE on one GPU (docs/MOE.md §15): an all-to-all beside a GEMM (NCCL's grouped send/recv on a
# one-rank communicator, then the copy proxy standing in for 8 ranks), and a Qwen3-30B-A3B layer's
# step at EP 1, the only expert layout one GPU has: its 128 experts as strided-batched grouped
# GEMMs, no dispatch. Their files go to moe/, which calibrate does not read.
a2a_args=(pair --gpu "$sim_gpu" --gemm 4096x4096x4096 --dtype bf16 --coll all_to_all --bytes 64MiB
          --cdmc 8 --order comm_first --sm-margin 0)
moe_args=(step --gpu "$sim_gpu" --model qwen3_30b_a3b --gpus 1 --ep 1 --layers 1 --gbs 2 --seq 2048
          --cdmc 8)
# mxfp8 through cuBLASLt's block scaling: measured on compute capability 10.x, refused by name on
# any other GPU (the plan uses the b200 file so that the refusal is the device's, not the model's).
mxfp8_args=(pair --gpu b200 --gemm 8192x8192x8192 --dtype mxfp8 --coll all_gather --bytes 64MiB
            --ranks 8 --cdmc 8 --order comm_first --sm-margin 0)
mxfp8_expected='needs a compute capability 10\.x GPU'
# Two ranks on one GPU need NCCL >= 2.30; older libraries refuse with this message
# (multi_rank_gpu_refusal in src/cuda/nccl_comms.cpp; tests/cuda/test_device_checks.cpp).
nccl2_expected='need NCCL >= 2\.30'

if [ $have_tests -eq 0 ]; then
  run_step unit -- "$tests" --gtest_brief=1
else
  skip_step unit "no ob_cuda_tests in $build_dir"
fi

filter=$(bench_filter)
if [ $have_bench -eq 0 ]; then
  run_step bench_list -- "$bench" --benchmark_list_tests --benchmark_filter="$filter"
else
  skip_step bench_list "no bench_cuda in $build_dir"
fi
if [ $have_bench -eq 0 ] || [ "$mode" = dry ]; then
  gpu_step bench bench.json -- "$bench" --benchmark_filter="$filter" --benchmark_format=json \
    --benchmark_out="$out_dir/bench.json" --benchmark_out_format=json
else
  skip_step bench "no bench_cuda in $build_dir (Google Benchmark missing at build time?)"
fi
gpu_step torch torch.json -- "$py" "$root/scripts/validate_torch.py" --out "$out_dir/torch.json" \
  --warmup 3 --iters 10

if [ $have_ob -eq 0 ]; then
  run_step pair_sim -- "$ob" "${pair_args[@]}" --backend sim "${common[@]}" --json "$out_dir/pair_sim.json"
  gpu_step pair_loopback pair_loopback.json -- "$ob" "${pair_args[@]}" --backend loopback \
    "${iters[@]}" "${common[@]}" --json "$out_dir/pair_loopback.json"
  run_step layer_sim -- "$ob" "${layer_args[@]}" --backend sim "${common[@]}" --json "$out_dir/layer_sim.json"
  gpu_step layer_loopback layer_loopback.json -- "$ob" "${layer_args[@]}" --backend loopback \
    "${iters[@]}" "${common[@]}" --json "$out_dir/layer_loopback.json"
  # Single-rank NCCL: a real communicator of one rank, every collective verified element-wise.
  gpu_step coll_nccl1 coll_nccl1_all_gather.json -- bash -c "for op in all_gather reduce_scatter all_reduce all_to_all; do \
    '$ob' coll --backend cuda --gpus 1 --ranks 1 --op \$op --min 1MiB --max 256MiB --factor 4 \
      --timeout 60 --json '$out_dir/coll_nccl1_'\$op'.json' || exit \$?; done"
  run_step step_sim -- "$ob" "${step_args[@]}" --backend sim "${common[@]}" --json "$out_dir/step_sim.json"
  gpu_step step_cuda step_cuda.json -- "$ob" "${step_args[@]}" --backend cuda "${iters[@]}" "${common[@]}" \
    --json "$out_dir/step_cuda.json" --trace "$out_dir/step_cuda_trace.json"
  mkdir -p "$out_dir/moe"
  gpu_step pair_a2a moe_steps.log -- bash -c "'$ob' ${a2a_args[*]} --backend cuda --gpus 1 --ranks 1 \
    ${iters[*]} --timeout 60 -q --json '$out_dir/moe/pair_a2a_nccl1.json' && \
    '$ob' ${a2a_args[*]} --backend loopback --ranks 8 ${iters[*]} --timeout 60 -q \
    --json '$out_dir/moe/pair_a2a_loopback.json'"
  gpu_step step_moe moe_steps.log -- "$ob" "${moe_args[@]}" --backend cuda "${iters[@]}" "${common[@]}" \
    --json "$out_dir/moe/step_moe_cuda.json"
  gpu_step pair_mxfp8 moe_steps.log "$mxfp8_expected" -- "$ob" "${mxfp8_args[@]}" --backend loopback \
    "${iters[@]}" "${common[@]}" -q --json "$out_dir/moe/pair_mxfp8_loopback.json"
  gpu_step pair_graphs pair_graphs_loopback.json -- "$ob" "${pair_args[@]}" --backend loopback --graphs \
    "${iters[@]}" "${common[@]}" -q --json "$out_dir/pair_graphs_loopback.json"
  gpu_step coll_nccl2 "coll_nccl2.log" "$nccl2_expected" -- "$ob" coll --backend cuda --gpus 2 --ranks 2 \
    --op all_reduce --min 1MiB --max 64MiB --factor 4 "${common[@]}" \
    --json "$out_dir/coll_nccl2_all_reduce.json"
  if [ "$mode" = dry ] || command -v compute-sanitizer >/dev/null 2>&1; then
    gpu_step sanitizer sanitizer.log -- bash -c "compute-sanitizer --tool memcheck --error-exitcode 9 \
      '$ob' pair --backend loopback --gemm 512x512x512 --coll all_gather --bytes 4MiB \
      --ranks 2 --comm-waits-on-producer 20 --iters 2 --warmup 1 --timeout 60 -q \
      > '$out_dir/sanitizer.log' 2>&1; rc=\$?; tail -n 5 '$out_dir/sanitizer.log'; exit \$rc"
  else
    skip_step sanitizer "compute-sanitizer not on PATH"
  fi
  # The folder's own files, read as calibrate reads results/gpu/: model vs every measured point.
  run_step calibrate -- bash -c "'$ob' calibrate --check --gpu '$sim_gpu' '$out_dir' \
    > '$out_dir/calibrate_check.txt'; rc=\$?; cat '$out_dir/calibrate_check.txt'; exit \$rc"
else
  for s in pair_sim pair_loopback layer_sim layer_loopback coll_nccl1 step_sim step_cuda pair_a2a step_moe pair_mxfp8 pair_graphs coll_nccl2 sanitizer calibrate; do
    skip_step "$s" "no overlap-bench in $build_dir"
  done
fi

# The archive as a reader gets it: calibrate, report and --expect must accept its files.
if [ -n "$archive" ] && [ $have_ob -eq 0 ]; then
  checkpoint
  run_step layout -- "$py" "$root/scripts/check_gpu_results.py" --archive "$archive" --bin "$ob" \
    --gpu "$sim_gpu"
else
  skip_step layout "no --archive, or no overlap-bench"
fi
checkpoint

[ -f "$out_dir/summary.md" ] && cat "$out_dir/summary.md"
echo "device_validate: results in $out_dir${archive:+, packed into $archive} ($failures failed step(s))" >&2
[ $failures -eq 0 ]
