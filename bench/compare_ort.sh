#!/usr/bin/env bash
# shellcheck disable=SC2059  # one printf format shared by all table rows
# Side-by-side benchmark: imgclass against ONNX Runtime, same machine, same run.
#
#   bench/compare_ort.sh [options] [MODEL.onnx ...]
#
# Per model, the two engines are interleaved (ours b1, ORT b1, ours b8, ORT b8,
# repeated --rounds times) so that a noisy machine hurts both alike. Each number
# kept is the best over the rounds (lowest median/p90, highest images/s).
# Ratios are ours/ORT: for latency < 1 means we are faster, for images/s > 1.
# The header names the CPU, the instruction set our kernels run (IMGCLASS_ISA
# forces a lower one) and the machine's measured FMA peak (build/peak_flops,
# made here when missing); gf_ours and gf_ort are each engine's achieved
# GFLOP/s at the throughput batch (the model's multiply-adds count as two).
#
# Options:
#   --threads T     intra-op threads for both engines (default 2)
#   --runs R        timed runs at batch 1 (default 30)
#   --runs8 R       timed runs at batch 8 (default 8)
#   --batch B       throughput batch size (default 8)
#   --rounds K      interleaved rounds per model (default 2)
#   --ort-only      skip imgclass even if it is built
#   --raw FILE      also write every measurement as TSV to FILE
# Environment: IMGCLASS (default build/imgclass), MODELS_DIR (build-models),
#   SHARED (../shared), NODE (node), TIMEOUT seconds per invocation (600).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
IMGCLASS=${IMGCLASS:-$root/build/imgclass}
MODELS_DIR=${MODELS_DIR:-$root/build-models}
SHARED=${SHARED:-$root/../shared}
NODE=${NODE:-node}
TIMEOUT=${TIMEOUT:-600}

threads=2 runs=30 runs8=8 batch=8 rounds=2 ort_only=0 raw=
models=()
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --runs8) runs8=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --ort-only) ort_only=1; shift ;;
    --raw) raw=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare_ort: unknown option $1" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done

if [ ${#models[@]} -eq 0 ]; then
  for m in "$MODELS_DIR"/*/model.onnx; do [ -f "$m" ] && models+=("$m"); done
  [ -f "$SHARED/imagenet/mobilenet_v2_1.0_224.onnx" ] &&
    models+=("$SHARED/imagenet/mobilenet_v2_1.0_224.onnx")
fi
if [ ${#models[@]} -eq 0 ]; then
  echo "compare_ort: no models (run 'make models' or pass MODEL.onnx)" >&2
  exit 2
fi
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  echo "compare_ort: run 'cd bench && npm ci --ignore-scripts' first" >&2
  exit 2
fi
if [ "$ort_only" = 0 ] && [ ! -x "$IMGCLASS" ]; then
  echo "compare_ort: $IMGCLASS not built, ONNX Runtime only" >&2
  ort_only=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$raw" ] && printf 'model\tengine\tround\tbatch\tload_ms\tmedian_ms\tp90_ms\timages_per_s\tpeak_rss_mb\n' >"$raw"

# Model label: the folder name for build-models/NAME/model.onnx, else the file.
label() {
  local b; b=$(basename "$1" .onnx)
  if [ "$b" = model ]; then basename "$(dirname "$1")"; else echo "$b"; fi
}

# run ENGINE MODEL BATCH RUNS -> key: value lines in $tmp/out, 0 on success.
run() {
  local eng=$1 model=$2 b=$3 r=$4
  if [ "$eng" = ours ]; then
    timeout "$TIMEOUT" "$IMGCLASS" bench "$model" --batch "$b" --threads "$threads" \
      --runs "$r" >"$tmp/out" 2>"$tmp/err"
  else
    timeout "$TIMEOUT" "$NODE" "$here/ort_bench.js" "$model" --batch "$b" \
      --threads "$threads" --runs "$r" --format kv >"$tmp/out" 2>"$tmp/err"
  fi
}

key() { awk -F': *' -v k="$1" '$1 == k { print $2; exit }' "$tmp/out"; }

# best OLD NEW MODE: keep the lower (min) or higher (max) number; "-" = none.
best() {
  awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN {
    if (a == "-" || a == "") { print (b == "" ? "-" : b); exit }
    if (b == "-" || b == "") { print a; exit }
    if (m == "min") print (b + 0 < a + 0 ? b : a); else print (b + 0 > a + 0 ? b : a) }'
}

# measure ENG MODEL NAME ROUND BATCH RUNS: fold the results into R[key,eng,batch].
declare -A R
measure() {
  local eng=$1 model=$2 name=$3 rnd=$4 b=$5 r=$6
  if ! run "$eng" "$model" "$b" "$r"; then
    echo "compare_ort: $eng failed on $name (batch $b): $(tail -n 1 "$tmp/err")" >&2
    R[err,$eng,$b]=1
    return 0
  fi
  local load med p90 ips rss
  load=$(key load_ms) med=$(key median_ms) p90=$(key p90_ms)
  ips=$(key images_per_s) rss=$(key peak_rss_mb)
  [ -n "$raw" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$eng" \
    "$rnd" "$b" "${load:--}" "${med:--}" "${p90:--}" "${ips:--}" "${rss:--}" >>"$raw"
  R[med,$eng,$b]=$(best "${R[med,$eng,$b]:--}" "$med" min)
  R[p90,$eng,$b]=$(best "${R[p90,$eng,$b]:--}" "$p90" min)
  R[ips,$eng,$b]=$(best "${R[ips,$eng,$b]:--}" "$ips" max)
  R[load,$eng]=$(best "${R[load,$eng]:--}" "$load" min)
  R[rss,$eng]=$(best "${R[rss,$eng]:--}" "$rss" max)
  [ "$eng" = ours ] && R[gflop]=$(key gflop_per_image)
  return 0
}

# GFLOP/s: images/s times GFLOP per image.
gflops() {
  awk -v i="$1" -v g="$2" 'BEGIN {
    num = "^[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?$";
    if (i !~ num || g !~ num) print "-"; else printf "%.1f", i * g }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    num = "^[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?$";
    if (a !~ num || b !~ num || b + 0 == 0) print "-";
    else printf "%.2f", a / b }'
}

engines=(ours ort)
[ "$ort_only" = 1 ] && engines=(ort)

echo "# imgclass vs ONNX Runtime $(cd "$here" && "$NODE" -p "require('onnxruntime-node/package.json').version")," \
  "threads=$threads, batch 1 x $runs runs, batch $batch x $runs8 runs, best of $rounds rounds," \
  "$(nproc) cpus, $(date -u +%FT%TZ)"
echo "# cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
  "family $(awk -F': ' '/^cpu family/ { print $2; exit }' /proc/cpuinfo);" \
  "$([ "$ort_only" = 0 ] && "$IMGCLASS" info --cpu | awk -F': ' '/^isa/ { print "imgclass isa " $2 }')"
peak=$root/build/peak_flops
[ -x "$peak" ] || cc -O2 -std=c11 -D_GNU_SOURCE "$here/peak_flops.c" -o "$peak" -lpthread
"$peak" "$threads" | sed 's/^/# /'
fmt='%-20s %9s %9s %6s | %9s %9s | %9s %9s %6s | %7s %7s | %8s %8s %7s\n'
printf "$fmt" model "b1_ours" "b1_ort" ratio "p90_ours" "p90_ort" \
  "b${batch}_ours" "b${batch}_ort" ratio gf_ours gf_ort "load_ours" "load_ort" rss_mb
printf "$fmt" "" "ms" "ms" "" "ms" "ms" "img/s" "img/s" "" "GF/s" "GF/s" "ms" "ms" ""

lat_ratios=() thr_ratios=()
for model in "${models[@]}"; do
  name=$(label "$model")
  R=()
  for ((k = 1; k <= rounds; k++)); do
    for b in 1 "$batch"; do
      r=$runs; [ "$b" != 1 ] && r=$runs8
      for e in "${engines[@]}"; do measure "$e" "$model" "$name" "$k" "$b" "$r"; done
    done
  done
  o1=${R[med,ours,1]:--} t1=${R[med,ort,1]:--}
  op=${R[p90,ours,1]:--} tp=${R[p90,ort,1]:--}
  o8=${R[ips,ours,$batch]:--} t8=${R[ips,ort,$batch]:--}
  [ -n "${R[err,ours,1]:-}" ] && o1=ERR
  [ -n "${R[err,ours,$batch]:-}" ] && o8=ERR
  rl=$(ratio "$o1" "$t1") rt=$(ratio "$o8" "$t8")
  [ "$rl" != - ] && lat_ratios+=("$rl")
  [ "$rt" != - ] && thr_ratios+=("$rt")
  printf "$fmt" "$name" "$o1" "$t1" "$rl" "$op" "$tp" "$o8" "$t8" "$rt" \
    "$(gflops "$o8" "${R[gflop]:-}")" "$(gflops "$t8" "${R[gflop]:-}")" \
    "${R[load,ours]:--}" "${R[load,ort]:--}" "${R[rss,ours]:--}"
done

geo() {
  [ $# -eq 0 ] && { echo -; return; }
  printf '%s\n' "$@" | awk '{ s += log($1); n++ } END { printf "%.2f", exp(s / n) }'
}
echo "# geometric mean ours/ORT: batch-1 latency $(geo "${lat_ratios[@]}")" \
  "(${#lat_ratios[@]} models), batch-$batch images/s $(geo "${thr_ratios[@]}")" \
  "(${#thr_ratios[@]} models)"
