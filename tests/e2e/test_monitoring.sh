#!/usr/bin/env bash
# Monitoring integration test: the alert rules, the example Prometheus config and the
# Grafana dashboard, checked against a real imgclassd scraped by a real Prometheus.
#
#   1. promtool check rules / test rules / check config (conf/prometheus/).
#   2. Starts two daemons on free loopback ports: A serves tests/models (made for
#      SHARED by tests/tools/test_models.py, with the
#      Triton metric names on); B serves a model repository whose only model cannot
#      load. Lints both /metrics with `promtool check metrics`.
#   3. Starts Prometheus (scrape and rule evaluation every 1s, alerts.yml) on both.
#   4. Sends known traffic with curl, then checks through Prometheus's HTTP API that
#      the counters are exactly what was sent and that the p99 from the latency
#      histogram lies in the bucket of the p99 the client measured.
#   5. Checks that the alerts that must be active are (load failure, model not ready,
#      error ratio, instance down after B is killed) and that no alert concerns A.
#   6. tests/tools/check_dashboard.py: every metric the dashboard and the rules use is
#      in A's /metrics, and every dashboard query runs on Prometheus with a result.
#
# Env: IMGCLASSD (default build/imgclassd), PROMETHEUS, PROMTOOL (default
# /usr/bin/...), PYTHON (default /usr/bin/python3), IMGCLASS_SHARED (default
# ../shared), IMGCLASSD_IMAGES (default $IMGCLASS_SHARED/imagenet/images). Exit 0 on
# success; non-zero with a message on failure. Without SHARED/imagenet, step 1
# runs and the rest is skipped: one line saying so, exit 78 (skipped in part).
# Needs Debian's `prometheus` package (prometheus and promtool) and curl.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
IMGCLASSD=${IMGCLASSD:-build/imgclassd}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
PY=${PYTHON:-/usr/bin/python3}
SHARED=${IMGCLASS_SHARED:-$ROOT/../shared}
IMAGES=${IMGCLASSD_IMAGES:-$SHARED/imagenet/images}
RULES=$ROOT/conf/prometheus/alerts.yml
DASHBOARD=$ROOT/conf/grafana/imgclassd.json
CHECK_DASHBOARD=$ROOT/tests/tools/check_dashboard.py
DEADLINE=85 # seconds for the whole test

say() { printf 'test_monitoring: %s\n' "$*"; }
fail() {
    printf 'test_monitoring: FAIL: %s\n' "$*" >&2
    exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_monitoring.XXXXXX")
PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 78 ]; then # 78: skipped in part
        for log in "$TMP"/*.log; do
            [ -s "$log" ] || continue
            echo "---- last lines of $(basename "$log")" >&2
            tail -n 15 "$log" >&2
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
# forget_pid PID: a child already reaped (its PID may be reused), not to kill again
forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}
trap 'exit 130' INT TERM

for tool in "$PROMETHEUS" "$PROMTOOL"; do
    [ -x "$tool" ] || fail "$tool not found: install Debian's prometheus package (apt-get install prometheus)"
done
command -v curl >/dev/null || fail "curl not found (apt-get install curl)"
[ -x "$PY" ] || fail "$PY not found"
[ -x "$IMGCLASSD" ] || fail "$IMGCLASSD not found: build it first (make build/imgclassd)"

# ---- 1. static checks -------------------------------------------------------------
"$PROMTOOL" check rules "$RULES" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool check rules: $(cat "$TMP/promtool.out")"
"$PROMTOOL" test rules "$ROOT/conf/prometheus/alerts_test.yml" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool test rules: $(cat "$TMP/promtool.out")"
"$PROMTOOL" check config "$ROOT/conf/prometheus/prometheus.yml" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool check config: $(cat "$TMP/promtool.out")"
"$PY" "$CHECK_DASHBOARD" --self-test >"$TMP/promtool.out" 2>&1 ||
    fail "check_dashboard.py --self-test: $(cat "$TMP/promtool.out")"
say "promtool check rules, test rules, check config: ok; check_dashboard self-test: ok"

# ---- what the daemons need: SHARED's models and photos -----------------------------
if [ ! -d "$SHARED/imagenet" ]; then
    echo "SKIP test_monitoring (in part): steps 2-6 need $SHARED/imagenet (SHARED=$SHARED): not found; step 1 ran"
    exit 78
fi
[ -d "$IMAGES" ] || fail "$IMAGES not found (the shared ImageNet test images)"
JPEGS=()
for f in cat bird dragonfly grace_hopper hot_dog; do
    [ -f "$IMAGES/$f.jpg" ] && JPEGS+=("$IMAGES/$f.jpg")
done
[ "${#JPEGS[@]}" -gt 0 ] || fail "no JPEG test images in $IMAGES"
"$PY" "$ROOT/tests/tools/test_models.py" "$SHARED" "$TMP/models" ||
    fail "tests/tools/test_models.py could not make the test repository"

# ---- helpers ----------------------------------------------------------------------
check_time() {
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "over ${DEADLINE}s while $1"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_daemon NAME MODELS_DIR [ENV=VALUE...]: starts the daemon on port 0; sets PORT
# and DAEMON_PID
start_daemon() {
    local name=$1 models=$2
    shift 2
    env IMGCLASSD_LISTEN=127.0.0.1 IMGCLASSD_PORT=0 IMGCLASSD_MODELS_DIR="$models" \
        IMGCLASSD_DRAIN_GRACE_MS=0 "$@" \
        "$IMGCLASSD" >"$TMP/$name.log" 2>&1 &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1 port \([0-9][0-9]*\).*/\1/p' "$TMP/$name.log" | head -n1)
        [ -n "$PORT" ] && break
        kill -0 "$!" 2>/dev/null || fail "daemon $name exited at start: $(tail -n 5 "$TMP/$name.log")"
        sleep 0.1
    done
    [ -n "$PORT" ] || fail "daemon $name did not say which port it listens on"
}

# wait_http URL CODE SECONDS
wait_http() {
    local code=
    for _ in $(seq $(($3 * 10))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)
        [ "$code" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 answered ${code:-nothing}, not $2, within $3 s"
}

LAT=$TMP/latencies.txt # kind model expected_code got_code seconds
: >"$LAT"
# post KIND BASE MODEL EXPECTED_CODE CONTENT_TYPE FILE [QUERY]
post() {
    local kind=$1 base=$2 model=$3 want=$4 ctype=$5 file=$6 query=${7:-} out code secs
    out=$(curl -sS -o /dev/null --max-time 15 -w '%{http_code} %{time_total}' \
        -H "Content-Type: $ctype" --data-binary "@$file" "$base/v1/models/$model:classify$query") ||
        fail "curl to $base/v1/models/$model:classify failed"
    read -r code secs <<<"$out"
    [ "$code" = "$want" ] ||
        fail "POST $base/v1/models/$model:classify$query ($ctype) answered $code, expected $want"
    echo "$kind $model $want $code $secs" >>"$LAT"
}

now() { "$PY" -c 'import time; print("%.3f" % time.time())'; }

# check_metrics WHAT FILE: promtool check metrics. The lint findings it accepts are
# those on Triton's own names (nv_inference_*: counters without _total, gauges ending
# in _count, _us units), which the daemon keeps exactly so that dashboards made for
# Triton work unchanged. Any other finding, or a parse error, fails.
check_metrics() {
    local rc=0
    "$PROMTOOL" check metrics <"$2" >"$TMP/promtool.out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        grep -v '^nv_inference_[a-z_]* ' "$TMP/promtool.out" >"$TMP/promtool.rest" || true
        if [ "$rc" -ne 3 ] || [ -s "$TMP/promtool.rest" ]; then
            fail "promtool check metrics on $1 (exit $rc): $(cat "$TMP/promtool.out")"
        fi
    fi
}

# ---- 2. the daemons ---------------------------------------------------------------
mkdir -p "$TMP/broken_models/broken"
echo '{"model": "missing.onnx", "labels": "missing.txt"}' >"$TMP/broken_models/broken/config.json"
T0=$(now)
start_daemon A "$TMP/models" IMGCLASSD_TRITON_METRICS=true
PORT_A=$PORT
start_daemon B "$TMP/broken_models"
PORT_B=$PORT
PID_B=$DAEMON_PID
A=http://127.0.0.1:$PORT_A
B=http://127.0.0.1:$PORT_B
INST_A=127.0.0.1:$PORT_A
INST_B=127.0.0.1:$PORT_B
wait_http "$A/readyz" 200 30
wait_http "$B/healthz" 200 10
wait_http "$B/readyz" 503 10
check_time "starting the daemons"
for d in A B; do
    base=$A
    [ "$d" = B ] && base=$B
    curl -sS --max-time 5 "$base/metrics" >"$TMP/$d.before.metrics" || fail "GET $base/metrics failed"
    check_metrics "daemon $d's /metrics" "$TMP/$d.before.metrics"
done
say "daemons: A ($INST_A, tests/models, ready) and B ($INST_B, a model that fails to load); promtool check metrics: ok"

# ---- 3. Prometheus ----------------------------------------------------------------
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: imgclassd
    static_configs:
      - targets: ["$INST_A", "$INST_B"]
EOF
"$PROMTOOL" check config "$TMP/prometheus.yml" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool check config (test config): $(cat "$TMP/promtool.out")"
for attempt in 1 2 3; do
    PORT_P=$(free_port)
    "$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
        --web.listen-address="127.0.0.1:$PORT_P" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
    PID_P=$!
    PIDS+=("$PID_P")
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT_P/-/ready" && break
        kill -0 "$PID_P" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$PID_P" 2>/dev/null && break
    wait "$PID_P" 2>/dev/null || true
    forget_pid "$PID_P"
    [ "$attempt" -lt 3 ] || fail "prometheus did not start: $(tail -n 5 "$TMP/prometheus.log")"
done
PROM=http://127.0.0.1:$PORT_P
wait_http "$PROM/-/ready" 200 20
check_time "starting prometheus"

# The Prometheus side of the test, in Python: queries, waits and comparisons.
cat >"$TMP/prom.py" <<'EOF'
import json, math, os, sys, time, urllib.parse, urllib.request

PROM, INST_A, INST_B = os.environ["PROM"], os.environ["INST_A"], os.environ["INST_B"]


def fail(msg):
    print("test_monitoring: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def api(path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise ValueError("%s %s: %s" % (path, params, body.get("error", body)))
    return body["data"]


def query(expr):
    data = api("/api/v1/query", query=expr)
    if data["resultType"] != "vector":
        return [({}, float(data["result"][1]))]
    return [(r["metric"], float(r["value"][1])) for r in data["result"]]


def by(expr, *labels):
    return {tuple(m.get(l, "") for l in labels): v for m, v in query(expr)}


def scalar(expr):
    res = query(expr)
    if len(res) != 1:
        fail("%s: %d series, expected 1" % (expr, len(res)))
    return res[0][1]


def wait(what, cond, seconds):
    end = time.time() + seconds
    while True:
        got = cond()
        if got:
            return got
        if time.time() > end:
            fail("timed out (%ss) waiting for %s" % (seconds, what))
        time.sleep(0.2)


def cmd_wait_up():
    def ok():
        up = by('up{job="imgclassd"}', "instance")
        return up.get((INST_A,)) == 1 and up.get((INST_B,)) == 1
    wait("both targets up", ok, 15)


def cmd_wait_scrape(after, *instances):
    """Waits for a scrape of each instance that started after `after` (unix s)."""
    for inst in instances:
        wait("a scrape of %s after the traffic" % inst,
             lambda: any(v > float(after) for _, v in
                         query('timestamp(up{instance="%s"})' % inst)), 15)


def same(what, got, want):
    got = {k: v for k, v in got.items()}
    if got != want:
        fail("%s: Prometheus has %s, the test sent %s" % (what, dict(sorted(got.items())),
                                                           dict(sorted(want.items()))))
    print("  %-58s %s" % (what, ", ".join("%s=%g" % ("/".join(k) or "all", v)
                                           for k, v in sorted(want.items()))))


def bucket_of(x, bounds):
    lo = 0.0
    for b in bounds:
        if x <= b:
            return lo, b
        lo = b
    return lo, math.inf


def check_p99(label, expr, lats, bounds):
    p99 = scalar(expr)
    n = len(lats)
    k = math.ceil(0.99 * n)          # histogram_quantile's rank lands on this observation
    c_k = sorted(lats)[k - 1]
    # The daemon times a request from its headers to the end of its answer, the client
    # from connect to the last byte: they differ by loopback transfer and scheduling.
    slack = max(0.005, 0.1 * c_k)
    lo = bucket_of(max(c_k - slack, 0.0), bounds)[0]
    hi = bucket_of(c_k + slack, bounds)[1]
    if math.isnan(p99) or not (lo <= p99 <= hi):
        fail("%s: p99 from the histogram is %s s; the client's p99 (observation %d of %d) "
             "is %.4f s, so it should lie in [%g, %g]" % (label, p99, k, n, c_k, lo, hi))
    print("  %-58s %.4f s (client p99 %.4f s, bucket (%g, %g], accepted [%g, %g])" % (
        label, p99, c_k, *bucket_of(c_k, bounds), lo, hi))


def cmd_verify(lat_file, t0):
    rows = [l.split() for l in open(lat_file) if l.strip()]
    a = [r for r in rows if r[1] != "broken"]
    b = [r for r in rows if r[1] == "broken"]

    def count(rs, key):
        out = {}
        for r in rs:
            out[key(r)] = out.get(key(r), 0) + 1
        return out

    sel_a = 'job="imgclassd", instance="%s"' % INST_A
    counted = [r for r in a if r[3] != "404"]  # unknown models get no model label
    same("A imgclassd_requests_total by model, code",
         by("imgclassd_requests_total{%s}" % sel_a, "model", "code"),
         count(counted, lambda r: (r[1], r[3])))
    same("A max_over_time(imgclassd_requests_total[5m]) by code",
         by("sum by (code) (max_over_time(imgclassd_requests_total{%s}[5m]))" % sel_a, "code"),
         count(counted, lambda r: (r[3],)))
    same("A imgclassd_http_requests_total{route=classify} by code",
         by('imgclassd_http_requests_total{%s, route="classify"}' % sel_a, "code"),
         count(a, lambda r: (r[3],)))
    same("A imgclassd_request_duration_seconds_count by model",
         by("imgclassd_request_duration_seconds_count{%s}" % sel_a, "model"),
         count(counted, lambda r: (r[1],)))
    ok_images = count([r for r in a if r[3] == "200"], lambda r: (r[1], "ok"))
    same("A imgclassd_images_total by model, status",
         by("imgclassd_images_total{%s}" % sel_a, "model", "status"), ok_images)
    per_model = {(m,): v for (m, _), v in ok_images.items()}
    for fam in ("imgclassd_queue_duration_seconds_count", "imgclassd_preprocess_duration_seconds_count",
                "imgclassd_batch_size_sum"):
        same("A %s by model" % fam, by("%s{%s}" % (fam, sel_a), "model"), per_model)
    same("A imgclassd_images_decoded_total by model, format",
         by("imgclassd_images_decoded_total{%s}" % sel_a, "model", "format"),
         {(m, "jpeg"): v for (m,), v in per_model.items()})
    same("A nv_inference_request_success by model",
         by("nv_inference_request_success{%s}" % sel_a, "model"), per_model)
    ready = by("imgclassd_model_ready{%s}" % sel_a, "model")
    same("A imgclassd_model_ready", ready,
         {(m,): 1.0 for m in ("mobilenet_v1", "mobilenet_v2", "inat_bird")})
    cap = by("imgclassd_queue_capacity{%s}" % sel_a, "model")
    same("A imgclassd_queue_capacity", cap,
         {("mobilenet_v1",): 64.0, ("mobilenet_v2",): 256.0, ("inat_bird",): 64.0})
    same("A imgclassd_queue_depth (after the traffic)",
         by("imgclassd_queue_depth{%s}" % sel_a, "model"), {k: 0.0 for k in cap})
    same("B imgclassd_requests_total by model, code",
         by('imgclassd_requests_total{instance="%s"}' % INST_B, "model", "code"),
         count(b, lambda r: (r[1], r[3])))
    same("B imgclassd_model_load_failures_total",
         by('imgclassd_model_load_failures_total{instance="%s"}' % INST_B, "model"),
         {("broken",): 1.0})

    start = scalar("process_start_time_seconds{%s}" % sel_a)
    if not float(t0) - 2 <= start <= time.time():
        fail("A process_start_time_seconds is %s; the test started it at %s" % (start, t0))
    rss = scalar("process_resident_memory_bytes{%s}" % sel_a)
    if not 10e6 < rss < 20e9:
        fail("A process_resident_memory_bytes is %s: not a plausible RSS" % rss)
    fds = scalar("process_open_fds{%s}" % sel_a)
    if not 3 <= fds < 10000:
        fail("A process_open_fds is %s" % fds)
    cpu = scalar("process_cpu_seconds_total{%s}" % sel_a)
    if not cpu > 0:
        fail("A process_cpu_seconds_total is %s after loading 3 models and classifying %d "
             "images: it is never updated (the CPU panel would be flat)" % (cpu, sum(per_model.values())))
    print("  %-58s cpu %.2f s, rss %.0f MB, %d fds" % ("A process_*", cpu, rss / 1e6, fds))

    raw = by("sum by (le) (imgclassd_request_duration_seconds_bucket{%s})" % sel_a, "le")
    bounds = sorted(float(le) for (le,) in raw if le != "+Inf")
    lat_all = [float(r[4]) for r in counted]
    lat_main = [float(r[4]) for r in counted if r[0] == "main"]
    check_p99("A p99, all requests (raw cumulative buckets)",
              "histogram_quantile(0.99, sum by (le) (imgclassd_request_duration_seconds_bucket{%s}))" % sel_a,
              lat_all, bounds)
    check_p99("A p99, main traffic (rate over 1m)",
              "histogram_quantile(0.99, sum by (le) (rate(imgclassd_request_duration_seconds_bucket{%s}[1m])))" % sel_a,
              lat_main, bounds)


def active_alerts():
    return [a for a in api("/api/v1/alerts")["alerts"] if a["labels"].get("alertname", "").startswith("Imgclassd")]


def cmd_alerts(*expected):
    """expected: NAME:INSTANCE:MODEL:STATE (MODEL may be empty). Waits for all of them,
    then checks that no alert concerns daemon A."""
    want = [tuple(e.split(":", 1)[0:1]) + tuple(e.split(":", 1)[1].rsplit(":", 2)) for e in expected]

    def have():
        got = {(a["labels"]["alertname"], a["labels"].get("instance", ""),
                a["labels"].get("model", ""), a["state"]) for a in active_alerts()}
        return all(w in got for w in want) and got
    got = wait("alerts %s" % ", ".join(expected), have, 20)
    for w in sorted(want):
        print("  %-58s %s" % ("alert %s (%s)" % (w[0], w[2] or w[1]), w[3]))
    bad = [g for g in got if g[1] == INST_A]
    if bad:
        fail("alerts active for the healthy daemon A: %s" % sorted(bad))
    rules = [r for g in api("/api/v1/rules")["groups"] for r in g["rules"]]
    sick = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
    if len(rules) != 7 or sick:
        fail("rules loaded by Prometheus: %d (expected 7), unhealthy: %s" % (len(rules), sick))


def cmd_queries(path):
    items = json.load(open(path))
    empty, n = [], 0
    for it in items:
        try:
            res = api("/api/v1/query", query=it["expr"])["result"]
        except ValueError as e:
            fail("%s: Prometheus refused %r: %s" % (it["where"], it["expr"], e))
        n += 1
        if not res and it["kind"] in ("panel", "template"):
            empty.append(it["where"])
    if empty:
        fail("dashboard queries with no data on a live daemon: " + "; ".join(empty))
    print("  %-58s %d run, all with data" % ("dashboard and rule queries on Prometheus", n))


def cmd_wait_down(inst):
    wait("Prometheus to see %s down" % inst, lambda: by('up{instance="%s"}' % inst, "instance").get((inst,)) == 0, 15)


cmds = {"wait-up": cmd_wait_up, "wait-scrape": cmd_wait_scrape, "verify": cmd_verify,
        "alerts": cmd_alerts, "queries": cmd_queries, "wait-down": cmd_wait_down}
try:
    cmds[sys.argv[1]](*sys.argv[2:])
except (ValueError, OSError) as e:
    fail("%s: %s" % (sys.argv[1], e))
EOF
prom() { PROM=$PROM INST_A=$INST_A INST_B=$INST_B "$PY" "$TMP/prom.py" "$@"; }

prom wait-up
say "prometheus on 127.0.0.1:$PORT_P scrapes both daemons"

# ---- 4. traffic -------------------------------------------------------------------
# Prime: one request per model, so that the per-model series exist in a scrape
# before the measured traffic (rate() cannot count a series' first step).
post prime "$A" mobilenet_v1 200 image/jpeg "${JPEGS[0]}"
post prime "$A" mobilenet_v2 200 image/jpeg "${JPEGS[0]}"
post prime "$B" broken 503 image/jpeg "${JPEGS[0]}"
prom wait-scrape "$(now)" "$INST_A" "$INST_B"
echo 'not an image' >"$TMP/text.txt"
for i in $(seq 0 19); do
    img=${JPEGS[$((i % ${#JPEGS[@]}))]}
    post main "$A" mobilenet_v1 200 image/jpeg "$img"
    post main "$A" mobilenet_v2 200 image/jpeg "$img"
done
for i in $(seq 5); do
    post main "$A" mobilenet_v1 415 text/plain "$TMP/text.txt"
    post main "$A" mobilenet_v2 400 image/jpeg "${JPEGS[0]}" '?top_k=0'
done
for i in $(seq 3); do
    post main "$A" no_such_model 404 image/jpeg "${JPEGS[0]}"
done
for i in $(seq 20); do
    post main "$B" broken 503 image/jpeg "${JPEGS[0]}"
done
T_END=$(now)
check_time "sending the traffic"
say "sent: A 42 x 200, 5 x 415, 5 x 400, 3 x 404 (unknown model); B 21 x 503 (model not loaded)"
prom wait-scrape "$T_END" "$INST_A" "$INST_B"

# ---- 5. what Prometheus saw -------------------------------------------------------
curl -sS --max-time 5 "$A/metrics" >"$TMP/A.metrics" || fail "GET $A/metrics failed"
check_metrics "A's /metrics after the traffic" "$TMP/A.metrics"
say "checks through Prometheus's API:"
prom verify "$LAT" "$T0"
prom alerts ImgclassdModelLoadFailed:"$INST_B":broken:firing \
    ImgclassdModelNotReady:"$INST_B":broken:pending \
    ImgclassdHighErrorRatio:"$INST_B":broken:pending
check_time "checking the metrics"

# ---- 6. the dashboard -------------------------------------------------------------
"$PY" "$CHECK_DASHBOARD" "$DASHBOARD" "$TMP/A.metrics" "$RULES" >"$TMP/check_dashboard.out" 2>&1 ||
    fail "check_dashboard.py: $(cat "$TMP/check_dashboard.out")"
say "$(head -n1 "$TMP/check_dashboard.out" | sed 's/^check_dashboard: //')"
"$PY" "$CHECK_DASHBOARD" --print-queries "$DASHBOARD" "$RULES" --var job=imgclassd >"$TMP/queries.json" ||
    fail "check_dashboard.py --print-queries failed"
prom queries "$TMP/queries.json"

# ---- 7. instance down -------------------------------------------------------------
kill "$PID_B"
wait "$PID_B" 2>/dev/null || true
forget_pid "$PID_B"
prom wait-down "$INST_B"
prom alerts ImgclassdInstanceDown:"$INST_B"::pending
check_time "checking the instance-down alert"

say "ok: rules, config, metrics, dashboard and alerts agree with a live daemon (${SECONDS}s)"
