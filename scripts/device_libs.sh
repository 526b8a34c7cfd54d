# Sourced by scripts/device_validate.sh: finds the shared libraries carried binaries need on a GPU
# machine that has CUDA, cuBLAS, NCCL and CUPTI only as Python wheels or in odd toolkit folders.
# CUDA 12 wheels put each library in nvidia/<package>/lib; CUDA 13 wheels put them together in
# nvidia/cu13/lib; the toolkit keeps CUPTI under extras/CUPTI/lib64. Tested by
# tests/e2e/test_device_validate.py with a fake site-packages tree.

# Folders to search, one per line: OB_LIB_ROOTS (colon-separated site-packages folders, for
# tests) or python3's site-packages, then the toolkit's folders.
lib_search_dirs() {
  local roots=${OB_LIB_ROOTS:-}
  if [ -z "$roots" ]; then
    roots=$(python3 -c 'import site, sys
print(":".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null)
  fi
  local IFS=:
  local r d
  for r in $roots; do
    [ -d "$r" ] || continue
    for d in "$r"/nvidia/cu13/lib "$r"/nvidia/cu12/lib "$r"/nvidia/*/lib "$r"/torch/lib; do
      [ -d "$d" ] && echo "$d"
    done
  done
  [ -n "${OB_LIB_ROOTS:-}" ] && return 0
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/local/cuda/extras/CUPTI/lib64 /usr/local/cuda/lib; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

# The first search folder holding a file named $1; nothing (exit 1) when none does.
find_lib_dir() {
  local d
  while read -r d; do
    [ -e "$d/$1" ] && { echo "$d"; return 0; }
  done < <(lib_search_dirs)
  return 1
}

prepend_ld_path() {
  case ":${LD_LIBRARY_PATH:-}:" in *":$1:"*) return 0 ;; esac
  export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# For each binary or plugin given: every library ldd cannot find is looked up and its folder put
# on LD_LIBRARY_PATH. Prints one line per library it placed or could not find.
resolve_missing_libs() {
  local bin lib dir
  for bin in "$@"; do
    [ -e "$bin" ] || continue
    for lib in $(ldd "$bin" 2>/dev/null | awk '/=> not found/ {print $1}'); do
      if dir=$(find_lib_dir "$lib"); then
        prepend_ld_path "$dir"
        echo "libs: $lib for $(basename "$bin") from $dir"
      else
        echo "libs: $lib for $(basename "$bin") NOT FOUND"
      fi
    done
  done
}

# Libraries loaded with dlopen, which ldd cannot see: NVML comes with the driver, CUPTI does not.
resolve_dlopen_libs() {
  local lib dir
  for lib in libcupti.so.13; do
    if dir=$(find_lib_dir "$lib"); then
      prepend_ld_path "$dir"
      echo "libs: $lib (dlopen) from $dir"
    else
      echo "libs: $lib (dlopen) not found: the SM-margin grid check will say unavailable"
    fi
  done
}

# 0 when ldd finds every library of every binary given, else 1 with the missing ones printed.
check_libs() {
  local bin missing=0
  for bin in "$@"; do
    [ -e "$bin" ] || continue
    if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
      ldd "$bin" | grep 'not found' | sed "s|^|$(basename "$bin"): |"
      missing=1
    fi
  done
  return $missing
}
