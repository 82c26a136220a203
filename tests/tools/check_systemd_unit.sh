#!/usr/bin/env bash
# Checks systemd/imgclassd.service with systemd's own analyser:
#
#   tests/tools/check_systemd_unit.sh [BINARY]     (default: build/imgclassd)
#
#   1. systemd-analyze verify: the unit parses, every setting is known, and
#      ExecStart's binary exists. The unit names /usr/local/bin/imgclassd, so
#      a copy whose ExecStart points at BINARY is verified (nothing installed).
#   2. systemd-analyze security --offline=true: prints the table and fails
#      when the overall exposure is above MAX_EXPOSURE (default 2.5).
# Needs the systemd package (systemd-analyze), not a running systemd.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$REPO/systemd/imgclassd.service
BIN=$(realpath "${1:-$REPO/build/imgclassd}")
MAX=${MAX_EXPOSURE:-2.5}
[ -x "$BIN" ] || { echo "check_systemd_unit: no binary at $BIN (make build/imgclassd)"; exit 1; }
command -v systemd-analyze >/dev/null || { echo "check_systemd_unit: systemd-analyze missing (apt-get install systemd)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/imgclassd|$BIN|g" "$UNIT" >"$tmp/imgclassd.service"
fail=0

echo "== systemd-analyze verify (ExecStart=$BIN)"
if systemd-analyze verify --man=no "$tmp/imgclassd.service" >"$tmp/verify.log" 2>&1 &&
    ! grep -q . "$tmp/verify.log"; then
    echo "verify: clean"
else
    cat "$tmp/verify.log"
    echo "check_systemd_unit: FAIL: systemd-analyze verify reported the above"
    fail=1
fi

echo "== systemd-analyze security --offline=true"
systemd-analyze security --offline=true "$tmp/imgclassd.service" | tee "$tmp/security.log" || true
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/security.log")
if [ -z "$level" ]; then
    echo "check_systemd_unit: FAIL: no overall exposure level in the output"
    fail=1
elif awk -v l="$level" -v m="$MAX" 'BEGIN { exit !(l > m) }'; then
    echo "check_systemd_unit: FAIL: exposure $level is above $MAX"
    fail=1
else
    echo "exposure $level <= $MAX"
fi

# The settings the daemon's life cycle relies on are still there.
for want in '^Type=notify$' "^ExecReload=/bin/sh -c 'kill -HUP \\\$MAINPID'\$" '^WatchdogSec=' \
    '^MemoryDenyWriteExecute=yes$' '^DynamicUser=yes$' '^ProtectSystem=strict$'; do
    grep -qE "$want" "$UNIT" || { echo "check_systemd_unit: FAIL: $UNIT lacks $want"; fail=1; }
done
# TimeoutStopSec must outlast the drain: drain_grace_ms + shutdown_timeout_ms
# of conf/imgclassd.json.
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$UNIT")
grace=$(sed -n 's/.*"drain_grace_ms"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' "$REPO/conf/imgclassd.json")
shut=$(sed -n 's/.*"shutdown_timeout_ms"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' "$REPO/conf/imgclassd.json")
if [ -z "$stop_s" ] || [ $((stop_s * 1000)) -le $((${grace:-5000} + ${shut:-30000})) ]; then
    echo "check_systemd_unit: FAIL: TimeoutStopSec=${stop_s:-?} s does not outlast drain_grace_ms + shutdown_timeout_ms ($((${grace:-5000} + ${shut:-30000})) ms)"
    fail=1
fi

if [ "$fail" = 0 ]; then
    echo "check_systemd_unit: 1 passed, 0 failed"
else
    echo "check_systemd_unit: 0 passed, 1 failed"
fi
exit $fail
