#!/usr/bin/env bash
# Runs systemd/imgclassd.service under a real systemd (Debian 12's 252,
# booted with systemd-nspawn in a minimal Debian root file system) and
# checks the life cycle the unit promises:
#
#   sudo tests/tools/check_systemd_boot.sh [BINARY]   (default: build/imgclassd)
#
#   - installed as the unit's header says (binary, /etc/imgclassd/imgclassd.json,
#     /var/lib/imgclassd/models/), enabled, started at boot with every
#     hardening setting (DynamicUser, SystemCallFilter, MemoryDenyWriteExecute,
#     ProtectSystem=strict, ...): active, STATUS "serving", non-root user;
#   - answers /readyz 200 and classifies a JPEG and a PNG;
#   - WATCHDOG=1 keeps coming (WatchdogTimestamp moves);
#   - `systemctl reload` succeeds and a model added before it gets served;
#   - `systemctl stop` drains (takes about drain_grace_ms) and ends in
#     Result=success with exit status 0;
#   - with WatchdogSec=2 (drop-in), a stopped (SIGSTOP) daemon is killed by
#     the watchdog and restarted (Restart=on-failure).
#
# The container has its own network (--private-network): nothing listens on
# the host. Needs root, systemd-container (systemd-nspawn), mmdebstrap or the
# cached tarball (/var/tmp/imgclassd-bookworm-minbase.tar, shared with
# check_container_rootfs.py), Debian's package archive, ../shared/imagenet
# (IMGCLASS_SHARED). Not root, or no SHARED/imagenet: says so in one line and
# exits 77 (skipped). About 1 minute, plus 1 to make the tarball the first time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${IMGCLASS_SHARED:-$REPO/../shared}
BIN=$(realpath "${1:-$REPO/build/imgclassd}")
BASE=${BASE_TAR:-/var/tmp/imgclassd-bookworm-minbase.tar}
[ "$(id -u)" = 0 ] || { echo "SKIP check_systemd_boot: needs root (systemd-nspawn, chroot)"; exit 77; }
[ -d "$SHARED/imagenet" ] ||
    { echo "SKIP check_systemd_boot: needs $SHARED/imagenet (SHARED=$SHARED): not found"; exit 77; }
command -v systemd-nspawn >/dev/null ||
    { echo "check_systemd_boot: systemd-nspawn missing (apt-get install systemd-container)"; exit 1; }
[ -x "$BIN" ] || { echo "check_systemd_boot: no binary $BIN"; exit 1; }

fail=0
ok() { echo "check_systemd_boot: ok: $*"; }
bad() { echo "check_systemd_boot: FAIL: $*"; fail=1; }

if [ ! -f "$BASE" ]; then
    command -v mmdebstrap >/dev/null ||
        { echo "check_systemd_boot: mmdebstrap missing (apt-get install mmdebstrap)"; exit 1; }
    echo "check_systemd_boot: making $BASE with mmdebstrap (once)"
    mmdebstrap --variant=minbase --mode=root --format=tar bookworm "$BASE.part" </dev/null >/dev/null
    mv "$BASE.part" "$BASE"
fi

WORK=$(mktemp -d /tmp/imgclassd-boot.XXXXXX)
R=$WORK/root
MACHINE=imgclassd-$$
NSPAWN_PID='' LEADER=''
cleanup() {
    set +e
    if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
        kill -s SIGRTMIN+4 "$LEADER" # systemd: power off
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null && kill "$NSPAWN_PID"
    wait 2>/dev/null
    rmdir "/run/systemd/nspawn/propagate/$MACHINE" 2>/dev/null
    if grep -q " $WORK" /proc/mounts; then
        echo "check_systemd_boot: $WORK still has mounts; not removed"
    elif [ "${KEEP:-0}" = 1 ]; then
        echo "check_systemd_boot: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- the root file system: minbase + systemd + the runtime packages --------------------
mkdir -p "$R"
tar -xf "$BASE" -C "$R"
cp /etc/resolv.conf "$R/etc/resolv.conf"
STAGE=$WORK/stage
"$REPO/docker/build.sh" --no-apt --stage "$STAGE" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log"; echo "check_systemd_boot: docker/build.sh failed"; exit 1; }
cp "$STAGE/runtime-packages.txt" "$R/tmp/"
chroot "$R" /bin/sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
    apt-get install -y -q --no-install-recommends systemd systemd-sysv curl' >"$WORK/apt.log" 2>&1 ||
    { tail -20 "$WORK/apt.log"; echo "check_systemd_boot: apt-get in the root file system failed"; exit 1; }

# The install steps of systemd/imgclassd.service's header.
install -m 0755 "$BIN" "$R/usr/local/bin/imgclassd"
install -D -m 0644 "$REPO/conf/imgclassd.json" "$R/etc/imgclassd/imgclassd.json"
install -m 0644 "$REPO/systemd/imgclassd.service" "$R/etc/systemd/system/"
add_model() { # name onnx labels config-from-tests/models
    local d=$1
    mkdir -p "$d"
    cp "$SHARED/imagenet/$3" "$d/model.onnx"
    cp "$SHARED/imagenet/$4" "$d/labels.txt"
    python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c.update(model="model.onnx", labels="labels.txt")
json.dump(c, open(sys.argv[2], "w"))' "$REPO/tests/models/$2/config.json" "$d/config.json"
}
install -d -m 0755 "$R/var/lib/imgclassd/models"
add_model "$R/var/lib/imgclassd/models/mobilenet_v1" mobilenet_v1 mobilenet_v1_0.25_128.onnx imagenet_labels.txt
cp "$SHARED/imagenet/images/cat.jpg" "$SHARED/imagenet/images/bird.png" "$R/root/"
chroot "$R" systemctl enable imgclassd.service >/dev/null 2>&1
# No getty or other noise in the container.
chroot "$R" systemctl mask console-getty.service getty@.service >/dev/null 2>&1 || true

# ---- boot ---------------------------------------------------------------------------------
systemd-nspawn -D "$R" -b --register=no --keep-unit --private-network -M "$MACHINE" \
    --console=passive >"$WORK/nspawn.log" 2>&1 </dev/null &
NSPAWN_PID=$!
# The container's init: systemd-nspawn's child that runs systemd. (It first
# forks a helper that exits at once; taking any child would race with it.)
for _ in $(seq 100); do
    LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1 || true)
    [ -n "$LEADER" ] && break
    sleep 0.1
done
[ -n "$LEADER" ] || { cat "$WORK/nspawn.log"; echo "check_systemd_boot: the container did not start"; exit 1; }
IN() { nsenter -t "$LEADER" -a "$@"; }
show() { IN systemctl show -p "$1" --value imgclassd; }
state=
for _ in $(seq 300); do
    state=$(IN systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    sleep 0.2
done
echo "check_systemd_boot: booted ($state); $(IN systemctl --version | head -1)"

# ---- start --------------------------------------------------------------------------------
[ "$(show ActiveState)" = active ] && [ "$(show SubState)" = running ] &&
    ok "imgclassd.service active (running) after boot" ||
    { bad "imgclassd.service is $(show ActiveState)/$(show SubState)"; IN journalctl -u imgclassd --no-pager | tail -20; }
[ "$(show StatusText)" = serving ] && ok "STATUS=serving" || bad "StatusText: $(show StatusText)"
main=$(show MainPID)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$(pgrep -f -n '^/usr/local/bin/imgclassd -c')/status" 2>/dev/null || echo ?)
[ "$uid" != 0 ] && [ "$uid" != "?" ] && ok "runs as uid $uid (DynamicUser)" || bad "runs as uid $uid"
code=$(IN curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz)
[ "$code" = 200 ] && ok "/readyz 200" || bad "/readyz $code"
for img in cat.jpg bird.png; do
    if [ "$img" = cat.jpg ]; then
        out=$(IN curl -s -w ' %{http_code}' -H 'Content-Type: image/jpeg' --data-binary @/root/cat.jpg \
            http://127.0.0.1:8080/v1/models/mobilenet_v1:classify)
    else
        out=$(IN curl -s -w ' %{http_code}' -F image=@/root/bird.png \
            http://127.0.0.1:8080/v1/models/mobilenet_v1:classify)
    fi
    [ "${out##* }" = 200 ] && ok "classified $img under the unit's sandbox: ${out:0:90}..." ||
        bad "classify $img: $out"
done

# ---- watchdog pings -----------------------------------------------------------------------
w1=$(show WatchdogTimestampMonotonic)
sleep 16 # WatchdogSec=30: a ping every 15 s
w2=$(show WatchdogTimestampMonotonic)
[ "$w2" != "$w1" ] && [ "$w2" != 0 ] && ok "WATCHDOG=1 received (WatchdogTimestamp moved)" ||
    bad "WatchdogTimestamp did not move ($w1 -> $w2)"

# ---- reload -------------------------------------------------------------------------------
add_model "$R/var/lib/private/imgclassd/models/mobilenet_v2" mobilenet_v2 mobilenet_v2_1.0_224.onnx imagenet_labels.txt
if IN systemctl reload imgclassd; then
    ok "systemctl reload succeeded"
else
    bad "systemctl reload failed"
    IN journalctl -u imgclassd --no-pager | tail -5
fi
at_reload=$(IN curl -s http://127.0.0.1:8080/v1/models/mobilenet_v2 | head -c 60)
# Answers are matched in the shell: under pipefail, grep -q quitting early
# can fail a pipeline with the writer's SIGPIPE.
served() { [[ $(IN curl -s http://127.0.0.1:8080/v1/models/mobilenet_v2) == *'"state":"ready"'* ]]; }
for _ in $(seq 100); do
    served && break
    sleep 0.1
done
served &&
    ok "the model added before the reload is served (when systemctl reload returned: $at_reload)" ||
    bad "the added model was not loaded after the reload"
[ "$(show MainPID)" = "$main" ] && ok "same main process after the reload" || bad "main PID changed"

# ---- stop: drain, exit 0 --------------------------------------------------------------------
t0=$(date +%s%N)
IN systemctl stop imgclassd
ms=$((($(date +%s%N) - t0) / 1000000))
res=$(show Result) st=$(show ExecMainStatus)
[ "$res" = success ] && [ "$st" = 0 ] && ok "systemctl stop: drained in $ms ms, Result=success, exit status 0" ||
    bad "systemctl stop: Result=$res ExecMainStatus=$st after $ms ms"
[ "$ms" -ge 4000 ] || bad "stop took $ms ms: no drain grace period?"

# ---- the watchdog kills a stuck daemon, systemd restarts it ---------------------------------
mkdir -p "$R/etc/systemd/system/imgclassd.service.d"
printf '[Service]\nWatchdogSec=2\nTimeoutAbortSec=3\n' >"$R/etc/systemd/system/imgclassd.service.d/watchdog.conf"
IN systemctl daemon-reload
IN systemctl start imgclassd
hostpid=$(pgrep -f -n '^/usr/local/bin/imgclassd -c')
kill -STOP "$hostpid"
restarted=0
for _ in $(seq 150); do
    if [ "$(show NRestarts)" -ge 1 ] && [ "$(show ActiveState)" = active ]; then restarted=1; break; fi
    sleep 0.1
done
if [ $restarted = 1 ] && [[ $(IN journalctl -u imgclassd --no-pager) == *"Watchdog timeout"* ]]; then
    ok "SIGSTOPped daemon: watchdog timeout, SIGABRT, restarted ($(show NRestarts) restart)"
else
    bad "no watchdog restart (NRestarts=$(show NRestarts), $(show ActiveState))"
    IN journalctl -u imgclassd --no-pager | tail -8
fi
kill -CONT "$hostpid" 2>/dev/null || true
IN systemctl stop imgclassd

if [ $fail = 0 ]; then
    echo "check_systemd_boot: 1 passed, 0 failed"
else
    echo "check_systemd_boot: 0 passed, 1 failed"
fi
exit $fail
