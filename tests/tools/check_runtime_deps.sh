#!/usr/bin/env bash
# Checks the staged runtime of imgclassd (docker/build.sh's output) against
# the Debian packages the container installs:
#
#   tests/tools/check_runtime_deps.sh [STAGE_DIR]
#
# Without STAGE_DIR it first runs docker/build.sh --no-apt into a temporary
# folder (build folder: $BUILD, default build). Then:
#   - the staged binary runs (--help);
#   - every library it loads (ldd, transitively) is found and is a file of
#     one of runtime-packages.txt's packages, of their dependencies
#     (Depends/Pre-Depends, recursively, as installed here), or of libc6;
#   - the list has the expected bookworm names and no -dev package;
#   - the staged config, healthcheck and model folder are there.
# Prints one line per library. Exit 0 when all holds.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
err() { echo "check_runtime_deps: FAIL: $*"; fail=1; }
# Matches in the shell, not by piping into grep -q: under pipefail, grep
# quitting at its first match can fail the pipeline with the writer's
# SIGPIPE (a CI run once failed "libprotobuf-c1 is not in the list" so).
on_list() { # whether package $1 is a line of the list
    local x
    for x in "${listed[@]}"; do [ "$x" = "$1" ] && return 0; done
    return 1
}
installed() { # whether dpkg has package $1 installed
    local st
    st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $st == *"ok installed"* ]]
}

STAGE=${1:-}
if [ -z "$STAGE" ]; then
    STAGE=$(mktemp -d /tmp/imgclassd-stage.XXXXXX)
    trap 'rm -rf "$STAGE"' EXIT
    "$REPO/docker/build.sh" --no-apt --build-dir "${BUILD:-build}" --stage "$STAGE"
fi
BIN=$STAGE/root/usr/local/bin/imgclassd
LIST=$STAGE/runtime-packages.txt
[ -x "$BIN" ] || { echo "check_runtime_deps: no staged binary at $BIN"; exit 1; }
[ -s "$LIST" ] || { echo "check_runtime_deps: no $LIST"; exit 1; }

"$BIN" --help >/dev/null || err "the staged binary does not run --help"

# The packages the image installs, as the lead asked for them (bookworm
# names); OpenBLAS may come as any of its three variants.
mapfile -t listed <"$LIST"
expected="libjansson4 libmicrohttpd12 libprotobuf-c1 libspng0 libsystemd0 libturbojpeg0 libuv1"
for p in $expected; do
    on_list "$p" || err "$p is not in runtime-packages.txt"
done
on_list libopenblas0 || on_list libopenblas0-pthread || on_list libopenblas0-openmp ||
    on_list libopenblas0-serial ||
    err "no OpenBLAS runtime package in runtime-packages.txt"
for p in "${listed[@]}"; do
    case $p in *-dev) err "$p is a development package" ;; esac
    installed "$p" ||
        err "$p (listed) is not installed here, so it cannot be checked"
done

# Closure of the listed packages over Depends and Pre-Depends, choosing the
# installed one of each alternative ("a | b").
declare -A closure=([libc6]=1)
queue=("${listed[@]}")
while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    p=${p%%:*}
    [ -n "${closure[$p]:-}" ] && continue
    closure[$p]=1
    deps=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null || true)
    IFS=',' read -ra groups <<<"$deps"
    for g in "${groups[@]}"; do
        IFS='|' read -ra alts <<<"$g"
        for a in "${alts[@]}"; do
            a=$(echo "$a" | sed 's/([^)]*)//g; s/:any//; s/[[:space:]]//g')
            [ -n "$a" ] || continue
            if installed "$a"; then
                queue+=("$a")
                break
            fi
        done
    done
done

owner() {
    local f=$1 c real
    real=$(readlink -f "$f")
    for c in "$f" "/usr${f#/usr}" "${f#/usr}" "$real" "/usr${real#/usr}" "${real#/usr}"; do
        dpkg-query -S "$c" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 && return 0
    done
    return 1
}

n=0
printf '%-26s %-52s %s\n' library "resolved to" package
while read -r lib arrow path _; do
    case $lib in linux-vdso.so.*) continue ;; esac
    if [ "$arrow" != "=>" ]; then # the dynamic loader itself: "/lib64/ld-linux-x86-64.so.2 (0x...)"
        path=$lib
    fi
    if [ "$path" = "not" ] || [ ! -e "$path" ]; then
        err "$lib is not found"
        continue
    fi
    pkg=$(owner "$path") || { err "no package owns $path"; continue; }
    pkg=${pkg%%,*}
    ok=ok
    [ -n "${closure[$pkg]:-}" ] || { ok="NOT from the listed packages"; err "$path is from $pkg"; }
    printf '%-26s %-52s %s %s\n' "$lib" "$path" "$pkg" "$([ "$ok" = ok ] || echo "<- $ok")"
    n=$((n + 1))
done < <(ldd "$BIN")

[ -f "$STAGE/root/etc/imgclassd/imgclassd.json" ] || err "no staged /etc/imgclassd/imgclassd.json"
[ -x "$STAGE/root/usr/local/bin/imgclassd-healthcheck" ] || err "no staged healthcheck"
[ -d "$STAGE/root/models" ] || err "no staged /models"
if [ -d "$REPO/models/fashion-mnist" ] && [ ! -d "$STAGE/root/models/fashion-mnist" ]; then
    err "models/fashion-mnist is in the repository but was not staged"
fi

echo "check_runtime_deps: $n libraries from: ${listed[*]} (+ their dependencies, libc6)"
if [ "$fail" = 0 ]; then
    echo "check_runtime_deps: 1 passed, 0 failed"
else
    echo "check_runtime_deps: 0 passed, 1 failed"
fi
exit $fail
