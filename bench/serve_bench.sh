#!/usr/bin/env bash
# Serving benchmark: imgclassd under wrk, beside the engine's offline speed.
#
#   bench/serve_bench.sh [--duration S] [--models "resnet50 mobilenet_v2 fashion-mnist"]
#                        [--threads T] [--connections "1 8 32 128"]
#                        [--layouts "1x2 2x1"] [--batch B] [--delay-us US]
#                        [--pick-connections C] [--full-sweep] [--warmup N]
#                        [--runs R] [--offline-rounds N] [--offline-batches "1 8 16"]
#                        [--wrk-threads N]
#                        [--timeout-ms MS] [--raw FILE] [--keep]
#
# For each model: a temporary model repository with a config.json, one
# imgclassd per instance layout (instances x threads, T cores in all) on a
# free loopback port, wrk posting a real photo (640x480 JPEG; a 28x28 PNG for
# fashion-mnist) through bench/post_image.lua, then `imgclass bench` on the
# same model offline. See bench/README.md ("Serving benchmark").
#
# Environment: IMGCLASSD, IMGCLASS (binaries, default build/), WRK, PYTHON
# (default /usr/bin/python3, needs PIL), MODELS_DIR (default build-models),
# REPO_MODELS (default models), SHARED (default ../shared).
set -u -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
IMGCLASSD=${IMGCLASSD:-$root/build/imgclassd}
IMGCLASS=${IMGCLASS:-$root/build/imgclass}
WRK=${WRK:-wrk}
PYTHON=${PYTHON:-/usr/bin/python3}
MODELS_DIR=${MODELS_DIR:-$root/build-models}
REPO_MODELS=${REPO_MODELS:-$root/models}
SHARED=${SHARED:-$root/../shared}
LUA=$root/bench/post_image.lua

duration=10
models="resnet50 mobilenet_v2 fashion-mnist"
threads=2
connections="1 8 32 128"
layouts=""          # default per model, see layouts_for
batch=""            # default per model
delay_us=""         # default per model
pick_conns=32
full_sweep=0
warmup=3          # sequential requests before each measurement
runs=8
offline_rounds=2
offline_batches="1 8 16"
wrk_threads=1
timeout_ms=30000
raw=""
keep=0

usage() {
    sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --duration S          seconds of wrk per measurement (10)
  --models "A B"        models to run (resnet50 mobilenet_v2 fashion-mnist); a name
                        is looked up as $MODELS_DIR/NAME/model.onnx, then
                        $REPO_MODELS/NAME/model.onnx (whose config.json is kept,
                        batching settings replaced)
  --threads T           cores for the model: instance layouts and the offline
                        bench use T threads in all (2)
  --connections "..."   wrk connection counts of the sweep (1 8 32 128)
  --layouts "..."       instance layouts to try, IxT or IxTbB (B: max_batch_size);
                        default "1xT 1xTb16 Tx1" ("1xT Tx1 1x1" for a model
                        of $REPO_MODELS such as fashion-mnist)
  --batch B             max_batch_size (8 for ImageNet models, 32 for fashion-mnist)
  --delay-us US         max_queue_delay_us (3000; 2000 for fashion-mnist)
  --pick-connections C  connections of the layout pick run (32)
  --full-sweep          sweep every layout instead of picking one first
  --warmup N            requests sent one at a time before each measurement, each
                        must answer 200 (3; 0: none, wrk starts on a fresh daemon)
  --runs R              timed runs per offline `imgclass bench` (8)
  --offline-rounds N    offline rounds, one before the model's service runs and
                        the rest after; the best counts (2; 0: no offline bench)
  --offline-batches ... batch sizes of the offline bench (1 8 16)
  --wrk-threads N       wrk -t (1: leaves the cores to the daemon)
  --timeout-ms MS       the model's timeout_ms and wrk's --timeout (30000)
  --raw FILE            every measurement as TSV
  --keep                keep the temporary folder (logs, configs, wrk output)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --layouts) layouts=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --delay-us) delay_us=$2; shift 2 ;;
    --pick-connections) pick_conns=$2; shift 2 ;;
    --full-sweep) full_sweep=1; shift ;;
    --warmup) warmup=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --offline-rounds) offline_rounds=$2; shift 2 ;;
    --offline-batches) offline_batches=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --timeout-ms) timeout_ms=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "serve_bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "serve_bench.sh: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in "$duration" "$threads" "$pick_conns" "$warmup" "$runs" "$offline_rounds" "$wrk_threads" "$timeout_ms"; do
    is_uint "$v" || die "'$v' is not a whole number"
done
[ "$threads" -ge 1 ] && [ "$duration" -ge 1 ] && [ "$wrk_threads" -ge 1 ] ||
    die "--threads, --duration and --wrk-threads must be at least 1"

# ---- prerequisites -------------------------------------------------------------------

command -v "$WRK" >/dev/null 2>&1 ||
    die "wrk not found; install it with: apt-get install wrk"
command -v curl >/dev/null 2>&1 || die "curl not found; install it with: apt-get install curl"
[ -x "$IMGCLASSD" ] || die "$IMGCLASSD not built; run: make"
[ -x "$IMGCLASS" ] || die "$IMGCLASS not built; run: make"
"$PYTHON" -c 'import PIL' 2>/dev/null ||
    die "$PYTHON cannot import PIL; install it with: apt-get install python3-pil"
clk_tck=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/serve_bench.XXXXXX") || die "mktemp failed"
case "$raw" in "" | /*) ;; *) raw=$PWD/$raw ;; esac
cd "$tmp" || die "cannot enter $tmp"   # nothing stray lands in the work tree
daemon_pid=""
wrk_pid=""

stop_daemon() {
    [ -n "$daemon_pid" ] || return 0
    local pid=$daemon_pid
    daemon_pid=""
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    # drain_grace_ms is 0 here; the daemon finishes what it accepted
    # (shutdown_timeout_ms, 30 s by default) and exits.
    local i
    for ((i = 0; i < 400; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "serve_bench.sh: imgclassd ($pid) still running 40 s after SIGTERM; SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    trap - EXIT INT TERM
    [ -n "$wrk_pid" ] && kill -TERM "$wrk_pid" 2>/dev/null
    stop_daemon
    if [ "$keep" = 1 ]; then
        echo "# kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'echo "serve_bench.sh: interrupted" >&2; exit 130' INT TERM

# ---- the images ------------------------------------------------------------------------

"$PYTHON" "$root/bench/make_photo.py" "$tmp/img" \
    --photo "$SHARED/imagenet/images/cat.jpg" >"$tmp/img.txt" ||
    die "bench/make_photo.py failed"
photo=$tmp/img/photo.jpg
digit=$tmp/img/digit.png

# ---- helpers ---------------------------------------------------------------------------

# value of key=... in the RESULT line of a wrk output file
field() { sed -n 's/^RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# One metric of the running daemon: metric NAME [MODEL] (0 when absent).
metric() {
    local sel=$1
    [ $# -gt 1 ] && sel="$1{model=\"$2\"}"
    curl -s --max-time 10 "http://127.0.0.1:$port/metrics" |
        awk -v s="$sel" '$1 == s { v = $2 } END { print v == "" ? 0 : v }'
}

# CPU ticks (user + system) the daemon has used.
daemon_ticks() {
    local f
    read -r -a f <"/proc/$daemon_pid/stat" 2>/dev/null || { echo 0; return; }
    echo $((f[13] + f[14]))
}

# CPU ticks the whole machine spent busy (steal included), all cpus.
machine_ticks() {
    local u n sy irq sirq st
    read -r _ u n sy _ _ irq sirq st _ </proc/stat
    echo $((u + n + sy + irq + sirq + st))
}

# Threads the daemon has now (loop, loader pool, instances, their pools).
daemon_threads() { ls "/proc/$daemon_pid/task" 2>/dev/null | wc -l; }

# Starts imgclassd on repo $1 (log $2); sets daemon_pid and port.
start_daemon() {
    local repo=$1 log=$2 i
    : >"$log"
    IMGCLASSD_LISTEN=127.0.0.1 IMGCLASSD_PORT=0 IMGCLASSD_MODELS_DIR=$repo \
        IMGCLASSD_LOG_REQUESTS=false IMGCLASSD_DRAIN_GRACE_MS=0 \
        IMGCLASSD_MAX_CONNECTIONS=1024 \
        "$IMGCLASSD" </dev/null >"$log" 2>&1 &
    daemon_pid=$!
    port=""
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/.*listening on .* port \([0-9][0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "serve_bench.sh: imgclassd did not start; its log:" >&2
        tail -20 "$log" >&2
        stop_daemon
        return 1
    fi
    # Loading resnet50 takes a few seconds; a failed load never gets ready.
    for ((i = 0; i < 1800; i++)); do
        local code
        code=$(curl -s -o "$tmp/readyz" -w '%{http_code}' --max-time 5 \
            "http://127.0.0.1:$port/readyz")
        [ "$code" = 200 ] && return 0
        if grep -qi "failed to load\|not ready" "$log" || ! kill -0 "$daemon_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "serve_bench.sh: imgclassd not ready ($(cat "$tmp/readyz" 2>/dev/null)); its log:" >&2
    tail -20 "$log" >&2
    stop_daemon
    return 1
}

# Waits until the model's queue is empty (the previous run's leftovers,
# cancelled when wrk hung up, are gone) so runs do not overlap.
wait_idle() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(metric imgclassd_queue_depth "$name")" = 0 ] && break
        sleep 0.1
    done
    sleep 0.5
}

# run_wrk CONNS SECONDS OUT: one wrk run against the current daemon.
run_wrk() {
    local c=$1 secs=$2 out=$3 t=$wrk_threads
    [ "$t" -gt "$c" ] && t=$c
    local timeout_s=$(((timeout_ms + 999) / 1000 + 5))
    "$WRK" -t"$t" -c"$c" -d"${secs}s" --timeout "${timeout_s}s" --latency -s "$LUA" \
        "http://127.0.0.1:$port/v1/models/$name:classify" -- "$image" "$ctype" \
        >"$out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid"
    local rc=$?
    wrk_pid=""
    if [ $rc -ne 0 ] || ! grep -q '^RESULT ' "$out"; then
        echo "serve_bench.sh: wrk failed (exit $rc):" >&2
        tail -5 "$out" >&2
        return 1
    fi
}

# measure CONNS LAYOUT: one recorded run; appends a row to rows.tsv.
measure() {
    local c=$1 lay=$2 out="$tmp/wrk-$name-$2-c$1.txt"
    wait_idle
    local b0 n0 i0 p0 q0 t0 t1 b1 n1 i1 p1 q1 m0 m1
    b0=$(metric imgclassd_batch_size_sum "$name")
    n0=$(metric imgclassd_batch_size_count "$name")
    i0=$(metric imgclassd_inference_duration_seconds_sum "$name")
    p0=$(metric imgclassd_preprocess_duration_seconds_sum "$name")
    q0=$(metric imgclassd_preprocess_duration_seconds_count "$name")
    t0=$(daemon_ticks)
    m0=$(machine_ticks)
    run_wrk "$c" "$duration" "$out" || return 1
    t1=$(daemon_ticks)
    m1=$(machine_ticks)
    local died=$((base_threads - $(daemon_threads)))
    b1=$(metric imgclassd_batch_size_sum "$name")
    n1=$(metric imgclassd_batch_size_count "$name")
    i1=$(metric imgclassd_inference_duration_seconds_sum "$name")
    p1=$(metric imgclassd_preprocess_duration_seconds_sum "$name")
    q1=$(metric imgclassd_preprocess_duration_seconds_count "$name")
    local secs rps ok_rps p50 p90 p99 non200 sockerr errs
    secs=$(field "$out" duration_s)
    rps=$(field "$out" rps)
    ok_rps=$(field "$out" ok_rps)
    p50=$(field "$out" p50_ms)
    p90=$(field "$out" p90_ms)
    p99=$(field "$out" p99_ms)
    non200=$(field "$out" non200)
    sockerr=$(($(field "$out" connect_errors) + $(field "$out" read_errors) +
        $(field "$out" write_errors) + $(field "$out" timeouts)))
    errs=$((non200 + sockerr))
    # A run in which nothing at all came back: every connection's request is
    # stuck (wrk does not count what is in flight when it stops).
    local stalled=0
    [ "$(field "$out" requests)" = 0 ] && stalled=1 && errs=$((errs + c))
    local avgb cpu busy prep other
    # cores busy outside the daemon (wrk, and whatever else runs here)
    other=$(awk -v a="$m0" -v b="$m1" -v d0="$t0" -v d1="$t1" -v hz="$clk_tck" -v s="$secs" \
        'BEGIN { printf "%.2f", (s > 0 ? ((b - a) - (d1 - d0)) / hz / s : 0) }')
    # mean decode + preprocess time per image (0 when the daemon has no
    # imgclassd_preprocess_duration_seconds)
    prep=$(awk -v a="$p0" -v b="$p1" -v m="$q0" -v n="$q1" \
        'BEGIN { printf "%.2f", (n > m ? (b - a) / (n - m) * 1000 : 0) }')
    avgb=$(awk -v a="$b0" -v b="$b1" -v m="$n0" -v n="$n1" \
        'BEGIN { printf "%.2f", (n > m ? (b - a) / (n - m) : 0) }')
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" -v s="$secs" \
        'BEGIN { printf "%.2f", (s > 0 ? (b - a) / hz / s : 0) }')
    busy=$(awk -v a="$i0" -v b="$i1" -v s="$secs" \
        'BEGIN { printf "%.2f", (s > 0 ? (b - a) / s : 0) }')
    printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n' \
        "$name" "$lay" "$c" "$rps" "$ok_rps" "$p50" "$p90" "$p99" "$errs" \
        "$non200" "$sockerr" "$avgb" "$cpu" "$busy" "$died" "$prep" "$other" >>"$tmp/rows.tsv"
    local codes first
    codes=$(field "$out" codes)
    first=$(sed -n 's/^RESULT .*first_error="\(.*\)"$/\1/p' "$out")
    printf '  %-14s %-6s c=%-4d %8.2f req/s  p50 %9.1f ms  p99 %9.1f ms  errors %d  batch %s  cpu %s  infer %s  prep %s ms  other %s%s%s\n' \
        "$name" "$lay" "$c" "$ok_rps" "$p50" "$p99" "$errs" "$avgb" "$cpu" "$busy" "$prep" "$other" \
        "$([ "$errs" -gt 0 ] && echo "  ($codes; $first)")" \
        "$([ "$died" -gt 0 ] && echo "  ($died daemon thread(s) exited during warm-up and run)")$([ "$stalled" = 1 ] && echo "  (STALLED: no answer at all; counted as $c errors)")" >&2
}

# Writes repo/NAME/config.json for layout I T B.
write_config() {
    local repo=$1 inst=$2 thr=$3 b=$4
    mkdir -p "$repo/$name"
    "$PYTHON" - "$src_dir" "$kind" "$repo/$name/config.json" "$inst" "$thr" "$b" \
        "$delay" "$timeout_ms" <<'EOF'
import json, os, sys
src, kind, out, inst, thr, b, delay, timeout = sys.argv[1:]
cfg = {}
p = os.path.join(src, "config.json")
if os.path.exists(p):
    with open(p) as f:
        cfg = json.load(f)
# Paths made absolute: the repository is elsewhere.
cfg["model"] = os.path.abspath(os.path.join(src, cfg.get("model", "model.onnx")))
if "labels" in cfg:
    cfg["labels"] = os.path.abspath(os.path.join(src, cfg["labels"]))
elif os.path.exists(os.path.join(src, "labels.txt")):
    cfg["labels"] = os.path.abspath(os.path.join(src, "labels.txt"))
if kind == "imagenet" and "preprocess" not in cfg:
    # torchvision's ImageNet transform (also the daemon's defaults):
    # Resize(256) of the shorter side, CenterCrop(224), ToTensor, Normalize.
    cfg["preprocess"] = {"resize": "shorter", "resize_size": 256, "crop": "center",
                         "antialias": True, "scale": 1 / 255,
                         "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
# No labels file: the daemon names the classes class_<i>.
cfg.update({"max_batch_size": int(b), "max_queue_delay_us": int(delay),
            "instances": int(inst), "threads": int(thr),
            "queue_capacity": 1024, "timeout_ms": int(timeout)})
with open(out, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
EOF
}

# Parses IxT[bB] into lay_i lay_t lay_b (B defaults to the model's batch).
parse_layout() {
    if [[ $1 =~ ^([0-9]+)x([0-9]+)(b([0-9]+))?$ ]]; then
        lay_i=${BASH_REMATCH[1]}
        lay_t=${BASH_REMATCH[2]}
        lay_b=${BASH_REMATCH[4]:-$mbatch}
        [ "$lay_i" -ge 1 ] && [ "$lay_t" -ge 1 ] && [ "$lay_b" -ge 1 ] && return 0
    fi
    die "bad layout '$1' (want IxT or IxTbB, e.g. 2x1 or 1x2b16)"
}

layouts_for() {
    if [ -n "$layouts" ]; then
        echo "$layouts"
    elif [ "$threads" -eq 1 ]; then
        echo "1x1"
    elif [ "$kind" = own ]; then
        echo "1x$threads ${threads}x1 1x1"
    else
        echo "1x$threads 1x${threads}b16 ${threads}x1"
    fi
}

# Layout $1 at each connection count of $2, each on a fresh daemon: start
# (the daemon runs a batch of zeros through every instance while loading),
# --warmup requests one at a time (each must answer 200), measure, stop.
# A fresh daemon per run keeps one run's leftovers (queued or cancelled
# jobs, threads that exited) out of the next. The warm-up is sequential
# on purpose: a wrk warm-up ends by hanging up on requests still queued.
serve_layout() {
    local lay=$1 conns=$2 c i code
    parse_layout "$lay"
    local repo="$tmp/repo-$name-$lay"
    write_config "$repo" "$lay_i" "$lay_t" "$lay_b" || return 1
    for c in $conns; do
        start_daemon "$repo" "$tmp/imgclassd-$name-$lay-c$c.log" || return 1
        base_threads=$(daemon_threads)
        for ((i = 0; i < warmup; i++)); do
            code=$(curl -s -o "$tmp/first.json" -w '%{http_code}' \
                --max-time $(((timeout_ms + 999) / 1000 + 5)) \
                -H "Content-Type: $ctype" --data-binary "@$image" \
                "http://127.0.0.1:$port/v1/models/$name:classify")
            if [ "$code" != 200 ]; then
                echo "serve_bench.sh: $name: warm-up request answered $code: $(head -c 300 "$tmp/first.json")" >&2
                stop_daemon
                return 1
            fi
        done
        measure "$c" "$lay" || { stop_daemon; return 1; }
        stop_daemon
    done
}

# Offline: imgclass bench at every batch of --offline-batches for each
# layout (instances x threads); appends to offline.tsv (round $2).
offline() {
    local lay seen=" " b out ips m0 m1 cpu other
    for lay in $1; do
        parse_layout "$lay"
        local key="${lay_i}x${lay_t}"
        case "$seen" in *" $key "*) continue ;; esac
        seen="$seen$key "
        for b in $offline_batches; do
            out="$tmp/offline-$name-$key-b$b-r$2.txt"
            local s0 s1
            s0=$(date +%s.%N)
            m0=$(machine_ticks)
            "$IMGCLASS" bench "$model_path" --batch "$b" --threads "$lay_t" \
                --instances "$lay_i" --runs "$runs" >"$out" 2>&1
            m1=$(machine_ticks)
            s1=$(date +%s.%N)
            ips=$(sed -n 's/^images_per_s: //p' "$out")
            if [ -z "$ips" ]; then
                echo "serve_bench.sh: imgclass bench failed: $(tail -1 "$out")" >&2
                continue
            fi
            # cores busy outside the bench while it ran (its own CPU time is
            # cpu_ms_per_run x (runs + 3 warm-up runs) x instances,
            # plus about load_ms of one core for loading the model)
            cpu=$(sed -n 's/^cpu_ms_per_run: //p' "$out")
            local load
            load=$(sed -n 's/^load_ms: //p' "$out")
            other=$(awk -v a="$m0" -v b="$m1" -v hz="$clk_tck" -v t0="$s0" -v t1="$s1" \
                -v c="${cpu:-0}" -v l="${load:-0}" -v r="$runs" -v k="$lay_i" \
                'BEGIN { w = t1 - t0; own = (c * (r + 3) * k + l) / 1000
                         printf "%.2f", (w > 0 ? ((b - a) / hz - own) / w : 0) }')
            printf '  %-14s offline %-4s batch %-3d %8.2f images/s  other %s  (round %d)\n' \
                "$name" "$key" "$b" "$ips" "$other" "$2" >&2
            printf '%s\t%s\t%d\t%s\t%s\t%d\n' "$name" "$key" "$b" "$ips" "$other" "$2" \
                >>"$tmp/offline.tsv"
        done
    done
}

# ---- run -------------------------------------------------------------------------------

: >"$tmp/rows.tsv"
: >"$tmp/offline.tsv"
: >"$tmp/picked.tsv"
: >"$tmp/skipped.txt"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -n "$(git -C "$root" status --porcelain -- src include 2>/dev/null)" ] && rev="$rev+dirty"
rev="$rev, built $(date -u -r "$IMGCLASSD" '+%Y-%m-%d %H:%M')"
cpu_name=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "# serve_bench $started, imgclassd $rev, $(nproc) cpus ($cpu_name), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# wrk -t$wrk_threads --latency, ${duration}s per run, connections: $connections; model threads $threads"
    sed 's/^/# /' "$tmp/img.txt"
} >&2

for name in $models; do
    # Where the model is and how to feed it.
    if [ -f "$MODELS_DIR/$name/model.onnx" ]; then
        src_dir=$MODELS_DIR/$name
        kind=imagenet
    elif [ -f "$REPO_MODELS/$name/model.onnx" ]; then
        src_dir=$REPO_MODELS/$name
        kind=own
    else
        if [ "$name" = fashion-mnist ]; then
            why="$REPO_MODELS/fashion-mnist/model.onnx is not there yet (it is made by: /usr/bin/python3 tools/train_fashion_mnist.py)"
        else
            why="no $MODELS_DIR/$name/model.onnx or $REPO_MODELS/$name/model.onnx (run: make models)"
        fi
        echo "# skipping $name: $why" >&2
        echo "$name: $why" >>"$tmp/skipped.txt"
        continue
    fi
    model_path=$src_dir/model.onnx
    if [ "$kind" = own ]; then
        mbatch=${batch:-32}
        delay=${delay_us:-2000}
    else
        mbatch=${batch:-8}
        delay=${delay_us:-3000}
    fi
    # The 28x28 grayscale models get the small PNG, the rest the photo.
    if [ "$name" = fashion-mnist ] || { [ -f "$src_dir/config.json" ] &&
        grep -q '"GRAY"' "$src_dir/config.json"; }; then
        image=$digit
        ctype=image/png
    else
        image=$photo
        ctype=image/jpeg
    fi
    lays=$(layouts_for)
    echo "# $name: $model_path, posting $(basename "$image") ($ctype), layouts: $lays, max_batch_size $mbatch, max_queue_delay_us $delay" >&2

    # Offline round 1 before the service runs, the others after: the best
    # of them is the reference, so a burst of other work hurts it less.
    [ "$offline_rounds" -ge 1 ] && offline "$lays" 1
    n_lays=$(echo $lays | wc -w)
    if [ "$full_sweep" = 1 ] || [ "$n_lays" -eq 1 ]; then
        for lay in $lays; do
            serve_layout "$lay" "$connections" || echo "# $name $lay failed" >&2
        done
        # Best layout: highest req/s at any connection count.
        best=$(awk -F'\t' -v m="$name" '$1 == m && $5 > r { r = $5; l = $2 } END { print l }' "$tmp/rows.tsv")
    else
        # Pick: each layout at --pick-connections, then sweep the best.
        for lay in $lays; do
            serve_layout "$lay" "$pick_conns" || echo "# $name $lay failed" >&2
        done
        best=$(awk -F'\t' -v m="$name" '$1 == m && $5 > r { r = $5; l = $2 } END { print l }' "$tmp/rows.tsv")
        # The pick rows move to picked.tsv; the table shows the sweep.
        awk -F'\t' -v m="$name" '$1 == m' "$tmp/rows.tsv" >>"$tmp/picked.tsv"
        awk -F'\t' -v m="$name" '$1 != m' "$tmp/rows.tsv" >"$tmp/rows.tmp" && mv "$tmp/rows.tmp" "$tmp/rows.tsv"
        if [ -n "$best" ]; then
            echo "# $name: best layout at $pick_conns connections: $best; sweeping it" >&2
            serve_layout "$best" "$connections" || echo "# $name $best failed" >&2
        fi
    fi
    [ -n "$best" ] && printf '%s\t%s\n' "$name" "$best" >>"$tmp/best.tsv"
    for ((r = 2; r <= offline_rounds; r++)); do
        offline "$lays" "$r"
    done
done

# ---- report ----------------------------------------------------------------------------

[ -n "$raw" ] && {
    printf 'model\tlayout\tconnections\trps\tok_rps\tp50_ms\tp90_ms\tp99_ms\terrors\tnon200\tsocket_errors\tavg_batch\tdaemon_cpu\tinfer_busy\tthreads_exited\tprep_ms\tother_cpu\n'
    cat "$tmp/picked.tsv" "$tmp/rows.tsv"
} >"$raw"

echo
echo "# imgclassd serving benchmark, $started, $(nproc) cpus, imgclassd $rev, wrk ${duration}s/run"
if [ -s "$tmp/picked.tsv" ]; then
    echo "# layout pick (instances x threads, b = max_batch_size) at $pick_conns connections:"
    awk -F'\t' '{ printf "#   %-14s %-8s %9.2f req/s  p50 %8.1f ms  p99 %8.1f ms  errors %d  avg batch %s  threads exited %d\n", $1, $2, $5, $6, $8, $9, $12, $15 }' "$tmp/picked.tsv"
fi
awk -F'\t' -v offline="$tmp/offline.tsv" -v pickc="$pick_conns" '
    BEGIN {
        while ((getline line < offline) > 0) {
            split(line, f, "\t")
            if (f[4] + 0 > best[f[1]] + 0) { best[f[1]] = f[4]; bestat[f[1]] = f[2] " b" f[3] }
            k = f[1] SUBSEP f[2]
            if (f[4] + 0 > lbest[k] + 0) lbest[k] = f[4]
        }
        goal["resnet50"] = 0.90; goal["mobilenet_v2"] = 0.80
        printf "%-14s %-8s %5s %9s %9s %9s %7s %6s %5s %7s %6s %6s\n", "model", "layout", "conns", "req/s",
               "p50_ms", "p99_ms", "errors", "batch", "cpu", "prep_ms", "other", "exited"
    }
    {
        printf "%-14s %-8s %5d %9.2f %9.1f %9.1f %7d %6.2f %5.2f %7.2f %6.2f %6d\n", $1, $2, $3, $5, $6, $8, $9, $12, $13, $16, $17, $15
        if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
        if ($5 + 0 > top[$1] + 0) { top[$1] = $5; topc[$1] = $3; toplay[$1] = $2 }
        if ($3 == 8) { r8[$1] = ($6 > 0 ? $8 / $6 : 0); have8[$1] = 1 }
        if ($3 == 128) { e128[$1] = $9; have128[$1] = 1 }
    }
    END {
        print ""
        printf "%-14s %12s %16s %7s %14s   %s\n", "model", "service", "offline best", "ratio",
               "same layout", "goals"
        for (i = 1; i <= n; i++) {
            m = order[i]
            ratio = best[m] > 0 ? top[m] / best[m] : 0
            # The service against the offline best of its own layout
            # (instances x threads, any batch): what serving costs, apart
            # from the choice of layout.
            lay = toplay[m]
            sub(/b[0-9]+$/, "", lay)
            same = lbest[m SUBSEP lay] > 0 ? sprintf("%.2f (%s)", top[m] / lbest[m SUBSEP lay], lay) : "-"
            g = ""
            if (m in goal)
                g = g sprintf("ratio>=%.2f %s; ", goal[m], ratio >= goal[m] ? "MET" : "NOT MET")
            if (have8[m]) g = g sprintf("p99/p50@8=%.2f<3 %s; ", r8[m], r8[m] < 3 ? "MET" : "NOT MET")
            if (have128[m]) g = g sprintf("errors@128=%d %s", e128[m], e128[m] == 0 ? "MET" : "NOT MET")
            printf "%-14s %7.2f@c%-4d %8.2f %-7s %7.2f %14s   %s\n", m, top[m], topc[m],
                   best[m], "(" bestat[m] ")", ratio, same, g
        }
    }' "$tmp/rows.tsv"
if [ -s "$tmp/offline.tsv" ]; then
    echo "# offline (imgclass bench --runs $runs, best of $offline_rounds round(s), images/s by layout and batch):"
    awk -F'\t' '{ k = $1 " " $2; if (!(k in seen)) { o[++n] = k; seen[k] = 1 }
                  kb = k SUBSEP $3; if (!(kb in best)) { bs[k] = bs[k] " " $3 } if ($4 + 0 > best[kb] + 0) best[kb] = $4 }
        END { for (i = 1; i <= n; i++) { m = split(substr(bs[o[i]], 2), b, " "); line = ""
                  for (j = 1; j <= m; j++) line = line sprintf("  b%s %.2f", b[j], best[o[i] SUBSEP b[j]])
                  printf "#   %-20s%s\n", o[i], line } }' "$tmp/offline.tsv"
fi
sed 's/^/# skipped /' "$tmp/skipped.txt"
echo "# columns: req/s = 200 answers per second; errors = non-200 answers + socket errors/timeouts"
echo "# (+ the connections when nothing came back at all);"
echo "# batch = mean images per batch run; cpu = daemon CPU in cores; prep_ms = mean decode + preprocess"
echo "# time per image (daemon metric); other = cores busy outside the daemon (wrk and anything"
echo "# else on the machine: noise); exited = daemon threads that ended"
echo "# during warm-up + run (0 expected); ratio = best service req/s / best offline images/s;"
echo "# same layout = best service req/s / best offline images/s of the service's layout"
