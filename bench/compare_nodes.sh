#!/usr/bin/env bash
# Where one model's time goes, node by node, in imgclass and in ONNX Runtime,
# side by side: which layers trail, by how much.
#
#   bench/compare_nodes.sh MODEL.onnx [--batch N] [--threads T] [--runs R]
#
# Both engines' own profilers (`imgclass bench --profile-nodes`, ORT's
# enableProfiling through bench/ort_bench.js --profile-nodes), medians per
# node. Lines are paired in execution order: both engines fuse a Conv's
# BatchNormalization, activation and residual Add, so on the torchvision
# CNNs the lists have the same length and pair layer by layer; where they
# differ (both engines' reorders are left out and summed apart; other fusions) the script says
# so and the tail pairs loosely. Branches (SqueezeNet's expand 1x1 and 3x3,
# GoogLeNet's inception arms) may run in another order in ORT: read the
# output shapes. The profilers time each node alone, which
# adds a little to the totals.
# Environment: IMGCLASS (default build/imgclass), NODE (node).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
IMGCLASS=${IMGCLASS:-$root/build/imgclass}
NODE=${NODE:-node}

[ $# -ge 1 ] || { echo "usage: compare_nodes.sh MODEL.onnx [--batch N] [--threads T] [--runs R]" >&2; exit 2; }
model=$(realpath "$1"); shift
batch=1 threads=2 runs=20
while [ $# -gt 0 ]; do
  case $1 in
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "compare_nodes: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$IMGCLASS" ] || { echo "compare_nodes: $IMGCLASS not built (make)" >&2; exit 1; }
[ -d "$here/node_modules/onnxruntime-node" ] ||
  { echo "compare_nodes: run 'npm install --ignore-scripts' in bench/ first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$IMGCLASS" bench "$model" --batch "$batch" --threads "$threads" --runs "$runs" --profile-nodes |
  awk '/^ *node +operator/ {on = 1; next}
       on && NF >= 5 { label = substr($0, 7, 32); sub(/ +$/, "", label)
                       split(substr($0, 40), f, " ")
                       if (label ~ /^NchwcReorder/) { reorders += f[1]; n_re++; next }
                       print label "\t" f[1] "\t" f[3] }
       END { printf "%d\t%.3f\n", n_re, reorders > "/dev/stderr" }' >"$tmp/ours" 2>"$tmp/reorders"
(cd "$here" && "$NODE" ort_bench.js "$model" --batch "$batch" --threads "$threads" \
   --runs "$runs" --profile-nodes) |
  awk 'NR > 1 && $1 ~ /^[0-9]+$/ && $2 !~ /^Reorder/ {print $2 "\t" $3 "\t" $4}' >"$tmp/ort"

n_ours=$(wc -l <"$tmp/ours") n_ort=$(wc -l <"$tmp/ort")
echo "# $(basename "$(dirname "$model")") batch $batch, $threads threads, $runs runs;" \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ "$n_ours" = "$n_ort" ] ||
  echo "# imgclass ran $n_ours nodes, ORT $n_ort: pairs below are by position only"
paste "$tmp/ours" "$tmp/ort" | awk -F'\t' '
  BEGIN { printf "%-28s %9s %9s %6s  %-10s %s\n", "imgclass", "ms", "ORT ms", "ratio", "ORT op", "ORT output" }
  { r = ($5 > 0 && $2 != "") ? sprintf("%.2f", $2 / $5) : "-"
    printf "%-28s %9s %9s %6s  %-10s %s\n", $1, $2, $5, r, $4, $6
    a += $2; b += $5 }
  END { printf "%-28s %9.3f %9.3f %6.2f\n", "total", a, b, (b > 0 ? a / b : 0) }'
read -r n_re t_re <"$tmp/reorders"
[ "$n_re" = 0 ] || echo "# and imgclass's $n_re NchwcReorder nodes (left out above, as ORT's Reorders are): $t_re ms"
