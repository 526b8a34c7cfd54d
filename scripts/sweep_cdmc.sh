#!/usr/bin/env bash
# CDMC sweep under a launcher. CUDA_DEVICE_MAX_CONNECTIONS is read by the CUDA driver once, when
# a process creates its context, so each value needs its own launch: this runs the given command
# once per value, each writing its own result JSON, then merges them (scripts/merge_cdmc.py) into
# the --json file the command names.
#
#   scripts/sweep_cdmc.sh --values 1,8,32 -- mpirun -np 8 build/overlap-bench pair ... --json OUT
#
# For each value V the command runs with CUDA_DEVICE_MAX_CONNECTIONS=V exported (also through the
# launcher: Open MPI `-x`, MPICH/Hydra `-genv`, srun `--export`), with the subcommand told the
# value (`pair --cdmc V`, `run --set cdmc=V`; any --cdmc / --set cdmc=... already there is
# replaced), and with `--json OUT` rewritten to OUT.cdmcV.json, kept beside OUT.
# A failed value is reported and the others still run; the merge takes the values that worked.
# Exit code: 0 all ok; otherwise the first failing run's code (2 usage, 3 runtime, 4 hang).
# Options: --values LIST (required), --dry-run (print the commands), -h/--help.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
values=""
dry_run=0
usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "sweep_cdmc: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --values) [ $# -ge 2 ] || die "--values needs a list"; values=$2; shift 2 ;;
    --values=*) values=${1#--values=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown argument '$1' (the command goes after --)" ;;
  esac
done
[ -n "$values" ] || die "--values is required (e.g. --values 1,8,32)"
[ $# -gt 0 ] || die "no command after --"
IFS=',' read -r -a value_list <<<"$values"
for v in "${value_list[@]}"; do
  case "$v" in ''|*[!0-9]*) die "--values: '$v' is not a whole number" ;; esac
  [ "$v" -ge 1 ] && [ "$v" -le 32 ] || die "--values: $v is out of range 1..32"
done

# Split the command: find --json, the subcommand, and drop CDMC options it already has.
cmd=("$@")
json=""
sub=""
clean=()
i=0
while [ $i -lt ${#cmd[@]} ]; do
  a=${cmd[$i]}
  case "$a" in
    --json) json=${cmd[$((i + 1))]:-}; i=$((i + 2)); continue ;;
    --json=*) json=${a#--json=}; i=$((i + 1)); continue ;;
    --cdmc) i=$((i + 2)); continue ;;
    --cdmc=*) i=$((i + 1)); continue ;;
    --set)
      case "${cmd[$((i + 1))]:-}" in cdmc=*) i=$((i + 2)); continue ;; esac ;;
    --set=cdmc=*) i=$((i + 1)); continue ;;
    run|pair|coll) [ -z "$sub" ] && sub=$a ;;
  esac
  clean+=("$a")
  i=$((i + 1))
done
[ -n "$json" ] || die "the command has no --json FILE: each value's result must be written somewhere"
[ -n "$sub" ] || die "no overlap-bench subcommand (run, pair) found in the command"
[ "$sub" != coll ] || die "coll has no CDMC axis; run it once per value yourself"

# How the launcher forwards a variable to every rank.
launcher=$(basename "${clean[0]}")
forward=()
launcher_flavour=""
case "$launcher" in
  mpirun|mpiexec|orterun|prterun)
    launcher_flavour=$("${clean[0]}" --version 2>&1 | head -n 3 || true)
    case "$launcher_flavour" in
      *"Open MPI"*|*"OpenRTE"*|*PRRTE*) forward=(-x CUDA_DEVICE_MAX_CONNECTIONS) ;;
      *) forward=(-genv CUDA_DEVICE_MAX_CONNECTIONS __VALUE__) ;;
    esac ;;
  srun) forward=(--export=ALL,CUDA_DEVICE_MAX_CONNECTIONS=__VALUE__) ;;
esac

parts=()
first_rc=0
for v in "${value_list[@]}"; do
  part="${json%.json}.cdmc$v.json"
  run=("${clean[0]}")
  for f in "${forward[@]}"; do run+=("${f//__VALUE__/$v}"); done
  run+=("${clean[@]:1}")
  if [ "$sub" = pair ]; then run+=(--cdmc "$v"); else run+=(--set "cdmc=$v"); fi
  run+=(--json "$part")
  echo "sweep_cdmc: CUDA_DEVICE_MAX_CONNECTIONS=$v ${run[*]}" >&2
  [ "$dry_run" = 1 ] && { parts+=("$v=$part"); continue; }
  CUDA_DEVICE_MAX_CONNECTIONS=$v "${run[@]}"
  rc=$?
  if [ $rc -eq 0 ] && [ -f "$part" ]; then
    parts+=("$v=$part")
  else
    [ $rc -eq 0 ] && rc=3
    echo "sweep_cdmc: CDMC=$v failed with exit code $rc" >&2
    [ $first_rc -eq 0 ] && first_rc=$rc
    # Exit 3 with a result file means cases failed verification: keep it in the merge.
    [ $rc -eq 3 ] && [ -f "$part" ] && parts+=("$v=$part")
  fi
done
[ "$dry_run" = 1 ] && { echo "sweep_cdmc: would merge ${parts[*]} -> $json" >&2; exit 0; }
if [ ${#parts[@]} -eq 0 ]; then
  echo "sweep_cdmc: no value produced a result; nothing merged" >&2
  exit $first_rc
fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$root/scripts/merge_cdmc.py" --out "$json" "${parts[@]}" || { [ $first_rc -eq 0 ] && first_rc=2; }
exit $first_rc
