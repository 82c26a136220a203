#!/usr/bin/env bash
# A/B of the engine's products (src/nn/sgemm.c) at two revisions, in one
# process: on a shared, noisy machine whole-model runs of two binaries
# drift apart by more than most changes gain; here both builds run
# alternately on the same shapes (bench/ab_sgemm.c says how).
#
#   bench/ab_sgemm.sh [REV_A [REV_B]] [-- CALLS]
#
# REV_A defaults to HEAD, REV_B to the working tree; each is built from its
# own src/nn and include, its symbols prefixed A_ or B_ (objcopy). The two
# revisions must share sgemm.h's functions and structures. Prints GFLOP/s
# per build and shape and B/A (> 1: B is faster).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
revs=() calls=40
while [ $# -gt 0 ]; do
  case $1 in
    --) calls=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) revs+=("$1"); shift ;;
  esac
done
rev_a=${revs[0]:-HEAD} rev_b=${revs[1]:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# tree REV DIR: src/nn and include of REV (the working tree for "") in DIR.
tree() {
  mkdir -p "$2"
  if [ -z "$1" ]; then
    cp -r "$root/src" "$root/include" "$2/"
  else
    git -C "$root" archive "$1" src/nn include | tar -x -C "$2"
  fi
}

syms="nn_sgemm_part nn_sgemm_has nn_sgemm_packed_floats nn_sgemm_pack_a nn_sgemm_images nn_sgemm_dots nn_sgemm"
for v in A B; do
  rev=$rev_a; [ $v = B ] && rev=$rev_b
  tree "$rev" "$tmp/$v"
  cc -O2 -std=c11 -D_GNU_SOURCE -I"$tmp/$v/src/nn" -I"$tmp/$v/include" \
    -c "$tmp/$v/src/nn/sgemm.c" -o "$tmp/$v.o"
  args=()
  for s in $syms; do args+=(--redefine-sym "$s=${v}_$s"); done
  objcopy "${args[@]}" "$tmp/$v.o"
done
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$tmp/B/src/nn" -I"$tmp/B/include" \
  "$root/bench/ab_sgemm.c" "$tmp/A.o" "$tmp/B.o" -o "$tmp/ab_sgemm"
echo "# A: ${rev_a}, B: ${rev_b:-working tree}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$tmp/ab_sgemm" "$calls"
