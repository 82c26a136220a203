#!/usr/bin/env bash
# Builds imgclassd for a container or a host install and stages its runtime
# files. The Dockerfile's build stage runs it; CI (and anyone, on Debian 12)
# can run it directly:
#
#   docker/build.sh [--stage DIR] [--build-dir DIR] [--jobs N] [--no-apt] [--no-strip]
#
#   --stage DIR      where to stage (default: <build-dir>/stage); emptied first
#   --build-dir DIR  make's BUILD folder, relative to the repository (default: build)
#   --jobs N         parallel make jobs (default: nproc)
#   --no-apt         do not install build packages; fail if one is missing
#   --no-strip       keep the debug information in the staged binary
#
# Steps: (1) installs the missing build packages with apt-get (root needed
# only when something is missing), (2) builds the daemon with `make`,
# (3) stages
#
#   DIR/root/usr/local/bin/imgclassd               the daemon (stripped)
#   DIR/root/usr/local/bin/imgclassd-healthcheck   GET /readyz with bash's /dev/tcp
#   DIR/root/etc/imgclassd/imgclassd.json          conf/imgclassd.json, models_dir=/models
#   DIR/root/models/fashion-mnist/                 the default model (when the repo has it)
#   DIR/runtime-packages.txt                       Debian packages owning the libraries
#                                                  the binary links (libc6 left out)
#
# and (4) checks that the staged binary runs (--help) and starts with the
# staged configuration. tests/tools/check_runtime_deps.sh then checks that
# every library it loads comes from those packages (or their dependencies).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=build
STAGE=
JOBS=$(nproc 2>/dev/null || echo 2)
APT=1
STRIP=1
while [ $# -gt 0 ]; do
    case $1 in
    --stage) STAGE=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --no-apt) APT=0; shift ;;
    --no-strip) STRIP=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
# make gets BUILD as given (relative to the repository, like its own default,
# so that its dependency files keep matching); BUILD_ABS is for the rest.
case $BUILD in /*) BUILD_ABS=$BUILD ;; *) BUILD_ABS=$REPO/$BUILD ;; esac
STAGE=${STAGE:-$BUILD_ABS/stage}
case $STAGE in /*) ;; *) STAGE=$PWD/$STAGE ;; esac
# It is emptied: never the root, the repository or a system folder.
case $(realpath -m "$STAGE") in
/ | /usr | /usr/* | /etc | /etc/* | /bin | /lib | /var | "$REPO")
    echo "build.sh: refusing to stage into $STAGE" >&2; exit 2 ;;
esac

say() { echo "build.sh: $*"; }

# Only what the daemon itself needs (the Makefile's DEB_PACKAGES adds the
# test and model-export tooling). libonnx-dev brings onnx.proto.
BUILD_PACKAGES="build-essential pkg-config libopenblas-dev libprotobuf-c-dev protobuf-c-compiler
    libonnx-dev libmicrohttpd-dev libuv1-dev libjansson-dev libturbojpeg0-dev libspng-dev
    libsystemd-dev"

# ---- 1. build packages -----------------------------------------------------------------
missing=
for p in $BUILD_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$APT" = 0 ]; then
        say "missing build packages:$missing (and --no-apt was given)" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        say "missing build packages:$missing; run as root to install them" >&2
        exit 1
    fi
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
else
    say "all build packages are installed"
fi

# ---- 2. build ----------------------------------------------------------------------------
say "building $BUILD/imgclassd"
make -C "$REPO" --no-print-directory -j"$JOBS" BUILD="$BUILD" "$BUILD/imgclassd"
BIN=$BUILD_ABS/imgclassd

# ---- 3. stage ----------------------------------------------------------------------------
rm -rf "$STAGE"
ROOT=$STAGE/root
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/imgclassd" "$ROOT/models"
if [ "$STRIP" = 1 ]; then
    install -m 0755 -s "$BIN" "$ROOT/usr/local/bin/imgclassd"
else
    install -m 0755 "$BIN" "$ROOT/usr/local/bin/imgclassd"
fi
install -m 0755 "$REPO/docker/healthcheck.sh" "$ROOT/usr/local/bin/imgclassd-healthcheck"

# The repository's config with the container's model path; everything else
# (listen 0.0.0.0, port 8080, drain timings) is as in conf/imgclassd.json.
sed 's|"models_dir"[[:space:]]*:[[:space:]]*"[^"]*"|"models_dir": "/models"|' \
    "$REPO/conf/imgclassd.json" >"$ROOT/etc/imgclassd/imgclassd.json"
grep -q '"models_dir": "/models"' "$ROOT/etc/imgclassd/imgclassd.json" || {
    say "conf/imgclassd.json has no \"models_dir\" key to point at /models" >&2
    exit 1
}
chmod 0644 "$ROOT/etc/imgclassd/imgclassd.json"

if [ -d "$REPO/models/fashion-mnist" ]; then
    cp -a "$REPO/models/fashion-mnist" "$ROOT/models/"
    # Every file the model's config names must be inside its folder.
    if grep -q '"\.\./' "$ROOT/models/fashion-mnist/config.json" 2>/dev/null; then
        say "models/fashion-mnist/config.json names files outside its folder" >&2
        exit 1
    fi
    chmod -R a+rX,go-w "$ROOT/models"
    say "staged the default model models/fashion-mnist ($(du -sh "$ROOT/models/fashion-mnist" | cut -f1))"
else
    say "WARNING: models/fashion-mnist is not in the repository yet: /models stays empty" \
        "(the daemon then reports 'no models' on /readyz until a repository is mounted at /models)"
fi

# Runtime packages: the owner of each library the binary names (NEEDED),
# found through the path ldd resolves it to. Merged /usr: dpkg may know a
# file under /lib or /usr/lib only, and alternatives (OpenBLAS) point
# elsewhere, so each candidate spelling and the real path are tried.
owner() {
    local f=$1 c real
    real=$(readlink -f "$f")
    for c in "$f" "/usr${f#/usr}" "${f#/usr}" "$real" "/usr${real#/usr}" "${real#/usr}"; do
        [ -n "$c" ] || continue
        dpkg-query -S "$c" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 && return 0
    done
    return 1
}
pkgs=
for lib in $(objdump -p "$BIN" | awk '$1 == "NEEDED" {print $2}'); do
    path=$(ldd "$BIN" | awk -v l="$lib" '$1 == l && $2 == "=>" {print $3}')
    if [ -z "$path" ] || [ ! -e "$path" ]; then
        say "$lib is not found by ldd" >&2
        exit 1
    fi
    pkg=$(owner "$path") || { say "no Debian package owns $path ($lib)" >&2; exit 1; }
    case $pkg in libc6) continue ;; esac # in every Debian image
    pkgs="$pkgs $pkg"
done
printf '%s\n' $pkgs | sort -u >"$STAGE/runtime-packages.txt"
say "runtime packages: $(tr '\n' ' ' <"$STAGE/runtime-packages.txt")"

# ---- 4. the staged binary runs ------------------------------------------------------------
"$ROOT/usr/local/bin/imgclassd" --help >/dev/null
empty=$(mktemp -d)
log=$(mktemp)
"$ROOT/usr/local/bin/imgclassd" -c "$ROOT/etc/imgclassd/imgclassd.json" --listen 127.0.0.1 \
    --port 0 --models-dir "$empty" --drain-grace-ms 0 --log-requests false 2>"$log" &
pid=$!
for _ in $(seq 50); do
    grep -q 'listening on' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
ok=0
grep -q 'listening on' "$log" && ok=1
kill -TERM "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
if [ "$ok" != 1 ] || [ "$rc" != 0 ]; then
    say "the staged binary did not start with the staged configuration (exit $rc):" >&2
    cat "$log" >&2
    exit 1
fi
rm -rf "$empty" "$log"
say "staged into $STAGE ($(du -sh "$ROOT" | cut -f1)); the binary starts with the staged config"
