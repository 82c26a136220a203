#!/usr/bin/env bash
# imgclassd behind HAProxy under load: stopping and restarting daemons must
# not fail a single client request.
#
#   tests/e2e/test_haproxy.sh        (from the repository; about 40 s)
#
# Two daemons (build/imgclassd, env IMGCLASSD) serve tests/models (made for
# SHARED by tests/tools/test_models.py) on free
# loopback ports with IMGCLASSD_DRAIN_GRACE_MS=3000; HAProxy runs
# conf/haproxy/imgclassd.cfg (from `defaults` on; loopback addresses and free
# ports put in) in the foreground; wrk posts ../shared/imagenet/images/cat.jpg
# to /v1/models/mobilenet_v1:classify through it (tests/tools/wrk_classify.lua):
#
#   phase 1  12 s of load; 3 s in, SIGTERM to daemon B: HAProxy must take B
#            out (its /readyz turns 503) before B stops accepting, and B must
#            exit 0. B is then started again.
#   phase 2  rolling restart under 20 s of load: SIGTERM A, wait for its exit,
#            start it on the same port, wait until HAProxy has it UP again;
#            then the same for B.
#
# Each phase passes when wrk saw no non-200 answer and no socket error, and
# HAProxy's backend counted no 5xx, connection or response error, retry or
# redispatch (so not even a connection attempt hit a closed daemon).
# Without SHARED/imagenet it says so in one line and exits 77 (skipped).
# Needs: haproxy, wrk, curl, python3 (Debian packages). Env: IMGCLASSD,
# IMGCLASS_SHARED (default ../shared), DRAIN_GRACE_MS (default 3000),
# KEEP=1 keeps the work folder (logs, haproxy.cfg, wrk output).
set -euo pipefail
cd "$(dirname "$0")/../.."
IMGCLASSD=${IMGCLASSD:-build/imgclassd}
SHARED=${IMGCLASS_SHARED:-../shared}
GRACE=${DRAIN_GRACE_MS:-3000}
IMAGE=$SHARED/imagenet/images/cat.jpg
for tool in haproxy wrk curl python3; do
    command -v "$tool" >/dev/null ||
        { echo "test_haproxy: $tool is missing (apt-get install haproxy wrk curl)"; exit 1; }
done
[ -x "$IMGCLASSD" ] || { echo "test_haproxy: no $IMGCLASSD (make build/imgclassd)"; exit 1; }
[ -d "$SHARED/imagenet" ] ||
    { echo "SKIP test_haproxy: needs $SHARED/imagenet (SHARED=$SHARED): not found"; exit 77; }
[ -r "$IMAGE" ] || { echo "test_haproxy: no $IMAGE"; exit 1; }

WORK=$(mktemp -d /tmp/imgclassd-haproxy.XXXXXX)
declare -A PID PORT
HAPROXY_PID='' WRK_PID=''
T0=$(date +%s.%N)

cleanup() {
    set +e
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
    for n in "${!PID[@]}"; do
        [ -n "${PID[$n]}" ] && kill -INT "${PID[$n]}" 2>/dev/null # SIGINT: no grace
    done
    [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "test_haproxy: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
python3 tests/tools/test_models.py "$SHARED" "$WORK/models"

elapsed() { python3 -c "import time; print(f'{time.time() - $T0:5.1f}')"; }
log() { echo "[$(elapsed) s] $*"; }

read -r 'PORT[A]' 'PORT[B]' HP SP < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

start_daemon() {
    local n=$1
    IMGCLASSD_PORT=${PORT[$n]} IMGCLASSD_LISTEN=127.0.0.1 IMGCLASSD_MODELS_DIR="$WORK/models" \
        IMGCLASSD_DRAIN_GRACE_MS=$GRACE IMGCLASSD_LOG_REQUESTS=false \
        "$IMGCLASSD" >>"$WORK/daemon-$n.log" 2>&1 </dev/null &
    PID[$n]=$!
}

wait_ready() {
    local n=$1
    for _ in $(seq 600); do
        curl -fs -o /dev/null "http://127.0.0.1:${PORT[$n]}/readyz" && return 0
        kill -0 "${PID[$n]}" 2>/dev/null || { echo "daemon $n died:"; tail "$WORK/daemon-$n.log"; return 1; }
        sleep 0.1
    done
    echo "daemon $n not ready in 60 s"
    return 1
}

# One field of a stats CSV row (pxname, svname), by the header's names.
stat() {
    curl -fs "http://127.0.0.1:$SP/stats;csv" | awk -F, -v px="$1" -v sv="$2" -v f="$3" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == px && $2 == sv { print $col[f] }'
}

# Waits until HAProxy reports the server in state (UP or DOWN); prints the
# milliseconds it took.
wait_state() {
    local sv=$1 want=$2 t0 s
    t0=$(date +%s%N)
    while :; do
        s=$(stat imgclassd "imgclassd-$sv" status || true)
        case $s in "$want" | "$want "*) break ;; esac
        [ $(($(date +%s%N) - t0)) -lt 30000000000 ] ||
            { echo "HAProxy never saw $sv $want (last: $s)" >&2; return 1; }
        sleep 0.05
    done
    echo "$((($(date +%s%N) - t0) / 1000000))"
}

stop_daemon() { # SIGTERM, then the exit status
    local n=$1 rc=0
    kill -TERM "${PID[$n]}"
    wait "${PID[$n]}" || rc=$?
    PID[$n]=
    return $rc
}

# Backend counters, to diff around a phase.
COUNTERS="hrsp_5xx econ eresp wretr wredis"
snapshot() {
    local out=
    for c in $COUNTERS; do out="$out $(stat imgclassd BACKEND "$c")"; done
    echo "$out"
}

run_wrk() { # phase duration
    IMAGE=$IMAGE MODEL=mobilenet_v1 wrk -t2 -c8 -d"$2"s --timeout 10s \
        -s tests/tools/wrk_classify.lua "http://127.0.0.1:$HP/" >"$WORK/wrk-$1.txt" 2>&1 &
    WRK_PID=$!
}

declare -a SUMMARY
passed=0 failed=0
judge() { # phase counters-before extra-problems
    local phase=$1 extra=$3 line ok=1 problems='' b_ctr a_ctr
    read -ra b_ctr <<<"$2"
    read -ra a_ctr <<<"$(snapshot)"
    line=$(grep '^RESULT' "$WORK/wrk-$phase.txt" || true)
    if [ -z "$line" ]; then
        cat "$WORK/wrk-$phase.txt"
        problems="no wrk result"
        ok=0
    fi
    local req non200 sock
    req=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
    non200=$(sed -n 's/.*non200=\([0-9]*\).*/\1/p' <<<"$line")
    sock=$(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|timeout)=/) { split($i, kv, "="); s += kv[2] } print s }' <<<"$line")
    [ "${non200:-1}" = 0 ] || { ok=0; problems="$problems ${non200} non-200 answers;"; }
    [ "${sock:-1}" = 0 ] || { ok=0; problems="$problems ${sock} socket errors;"; }
    grep -q 'Non-2xx or 3xx responses' "$WORK/wrk-$phase.txt" && { ok=0; problems="$problems wrk: Non-2xx;"; }
    local i=0 hap=
    for c in $COUNTERS; do
        local d=$((a_ctr[i] - b_ctr[i]))
        hap="$hap $c=$d"
        [ "$d" = 0 ] || { ok=0; problems="$problems haproxy $c=$d;"; }
        i=$((i + 1))
    done
    [ -z "$extra" ] || { ok=0; problems="$problems $extra"; }
    SUMMARY+=("$(printf '%-16s requests=%-6s non200=%-3s socket_errors=%-3s haproxy:%s  p50/p99 %s/%s ms  %s' \
        "$phase" "${req:-?}" "${non200:-?}" "${sock:-?}" "$hap" \
        "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")" \
        "$([ $ok = 1 ] && echo PASS || echo "FAIL:$problems")")")
    grep -q '^FIRST_BAD' "$WORK/wrk-$phase.txt" && grep '^FIRST_BAD' "$WORK/wrk-$phase.txt"
    if [ $ok = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# ---- set-up -----------------------------------------------------------------------------
start_daemon A
start_daemon B
wait_ready A
wait_ready B
log "daemons A (port ${PORT[A]}) and B (port ${PORT[B]}) ready"

{
    cat <<EOF
# generated by tests/e2e/test_haproxy.sh from conf/haproxy/imgclassd.cfg
global
    log stdout format raw local0 notice
    maxconn 2000
EOF
    sed -n '/^defaults/,$p' conf/haproxy/imgclassd.cfg |
        sed -e "s|^\( *bind\) :80$|\1 127.0.0.1:$HP|" \
            -e "s|^\( *bind\) 127.0.0.1:8404$|\1 127.0.0.1:$SP|" \
            -e "s|^\( *server imgclassd-1\) imgclassd-1:8080|\1 127.0.0.1:${PORT[A]}|" \
            -e "s|^\( *server imgclassd-2\) imgclassd-2:8080|\1 127.0.0.1:${PORT[B]}|"
} >"$WORK/haproxy.cfg"
for want in "bind 127.0.0.1:$HP" "bind 127.0.0.1:$SP" "127.0.0.1:${PORT[A]}" "127.0.0.1:${PORT[B]}"; do
    grep -q "$want" "$WORK/haproxy.cfg" ||
        { echo "test_haproxy: conf/haproxy/imgclassd.cfg no longer has the lines this test replaces"; exit 1; }
done
haproxy -c -q -f "$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 </dev/null &
HAPROXY_PID=$!
# Server names in the config are imgclassd-1/2; A is 1 and B is 2.
declare -A SV=([A]=1 [B]=2)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$SP/stats" && break; sleep 0.05; done
wait_state 1 UP >/dev/null
wait_state 2 UP >/dev/null
curl -fs -o /dev/null -H 'Content-Type: image/jpeg' --data-binary "@$IMAGE" \
    "http://127.0.0.1:$HP/v1/models/mobilenet_v1:classify" ||
    { echo "test_haproxy: a request through HAProxy failed"; exit 1; }
log "haproxy on port $HP (stats $SP) sees both UP"

# ---- phase 1: SIGTERM to B under load ---------------------------------------------------
counters=$(snapshot)
run_wrk sigterm 12
sleep 3
log "phase 1: SIGTERM to B"
t_term=$(date +%s%N)
kill -TERM "${PID[B]}"
down_ms=$(wait_state 2 DOWN)
log "phase 1: HAProxy took B out after ${down_ms} ms (drain grace ${GRACE} ms)"
rc=0
wait "${PID[B]}" || rc=$?
PID[B]=
log "phase 1: B exited with status $rc after $((($(date +%s%N) - t_term) / 1000000)) ms"
extra=
[ "$rc" = 0 ] || extra="B exited with status $rc;"
[ "$down_ms" -lt "$GRACE" ] || extra="$extra B left rotation only after ${down_ms} ms;"
wait "$WRK_PID"
WRK_PID=
judge sigterm "$counters" "$extra"

start_daemon B
wait_ready B
up_ms=$(wait_state 2 UP)
log "B restarted; HAProxy has it UP again after ${up_ms} ms"

# ---- phase 2: rolling restart under load ------------------------------------------------
counters=$(snapshot)
# The load runs until the restart is over and 2 s more, however long the
# restart takes (an ASan build starts slowly): wrk stops at SIGINT and
# reports; 300 s only bounds a restart that never ends.
run_wrk rolling-restart 300
sleep 2
extra=
for n in A B; do
    log "phase 2: SIGTERM to $n"
    rc=0
    stop_daemon "$n" || rc=$?
    [ "$rc" = 0 ] || extra="$extra $n exited with status $rc;"
    log "phase 2: $n exited ($rc); starting it again"
    start_daemon "$n"
    wait_ready "$n"
    up_ms=$(wait_state "${SV[$n]}" UP)
    log "phase 2: $n UP in HAProxy ${up_ms} ms after ready"
done
sleep 2
kill -0 "$WRK_PID" 2>/dev/null || extra="$extra the restart outlasted the load;"
kill -INT "$WRK_PID" 2>/dev/null
wait "$WRK_PID"
WRK_PID=
judge rolling-restart "$counters" "$extra"

# ---- summary ----------------------------------------------------------------------------
echo
echo "test_haproxy: per phase (wrk -t2 -c8 through HAProxy, 2 daemons, drain grace ${GRACE} ms)"
printf '  %s\n' "${SUMMARY[@]}"
for s in A B; do
    echo "  server imgclassd-${SV[$s]} ($s): $(stat imgclassd "imgclassd-${SV[$s]}" stot) requests, status $(stat imgclassd "imgclassd-${SV[$s]}" status)"
done
log "done"
echo "test_haproxy: $passed passed, $failed failed"
[ "$failed" = 0 ]
