#!/usr/bin/env bash
# Runs the tests one after the other and ends with one line:
#
#   N passed, N failed, N skipped
#
#   tests/run.sh [--build DIR] [--shared DIR] [--models DIR] [--timeout S]
#                [--no-conformance] [NAME...]
#
# What runs, from the repository's root, in this order:
#   - every C suite: each tests/**/test_*.c, built by make as BUILD/tests/**/test_*
#     (a source whose program is missing fails as "not built");
#   - every script test: tests/**/test_*.sh, with bash;
#   - the ONNX conformance cases: BUILD/conformance --skips tests/conformance_skips.txt
#     (not with --no-conformance).
# NAME... runs only those (test_api, nn/test_conv, test_haproxy.sh, conformance).
# Each under `timeout` (--timeout, env TEST_TIMEOUT, default 900 s: a suite past it
# is stopped with everything it started, and fails), with IMGCLASS_SHARED (--shared,
# default ../shared), IMGCLASS_MODELS (--models, default build-models),
# IMGCLASS_TOOL=BUILD/imgclass, IMGCLASSD=BUILD/imgclassd and IMGCLASS_BUILD=BUILD in
# its environment.
#
# A suite's exit status says how it went: 0 passed; 77 skipped (it printed why,
# in a line starting with SKIP); 78 skipped in part: it skipped some of its tests
# (likewise) and passed the others; anything else failed. The run goes on after a
# failure; the summary names the failed and skipped suites, then the closing line
# (suites skipped in part count as passed). Exit status 1 when any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BUILD=build
SHARED=${IMGCLASS_SHARED:-../shared}
MODELS=${IMGCLASS_MODELS:-build-models}
TIMEOUT=${TEST_TIMEOUT:-900}
CONFORMANCE=1
ONLY=()
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --shared) SHARED=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --no-conformance) CONFORMANCE=0; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) ONLY+=("$1"); shift ;;
    esac
done
case $TIMEOUT in '' | *[!0-9]*) echo "run.sh: --timeout wants seconds, not '$TIMEOUT'" >&2; exit 2 ;; esac
command -v timeout >/dev/null || { echo "run.sh: no timeout (coreutils)" >&2; exit 2; }
export IMGCLASS_SHARED=$SHARED IMGCLASS_MODELS=$MODELS
export IMGCLASS_TOOL=$BUILD/imgclass IMGCLASSD=$BUILD/imgclassd IMGCLASS_BUILD=$BUILD

# ---- the list: NAME<TAB>command ---------------------------------------------------------
declare -a NAMES CMDS
add() { NAMES+=("$1"); CMDS+=("$2"); }
while IFS= read -r src; do
    name=${src#tests/}
    add "${name%.c}" "$BUILD/tests/${name%.c}"
done < <(find tests -name 'test_*.c' -not -path 'tests/util/*' | LC_ALL=C sort)
while IFS= read -r src; do
    add "${src#tests/}" "bash $src"
done < <(find tests -name 'test_*.sh' | LC_ALL=C sort)
[ "$CONFORMANCE" = 1 ] && add conformance "$BUILD/conformance --skips tests/conformance_skips.txt"

if [ ${#ONLY[@]} -gt 0 ]; then
    declare -a names cmds
    for want in "${ONLY[@]}"; do
        found=0
        for i in "${!NAMES[@]}"; do
            if [ "${NAMES[$i]}" = "$want" ]; then
                names+=("${NAMES[$i]}"); cmds+=("${CMDS[$i]}"); found=1
            fi
        done
        [ $found = 1 ] || { echo "run.sh: no test named '$want'" >&2; exit 2; }
    done
    NAMES=("${names[@]}") CMDS=("${cmds[@]}")
fi

# ---- running --------------------------------------------------------------------------
# timeout runs each suite in a process group of its own and, past the limit,
# sends SIGTERM to all of it (daemons a suite started too), SIGKILL 30 s later.
# The suite runs in the background so that an interrupt here reaches that group.
CHILD=''
interrupted() {
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    echo "run.sh: interrupted" >&2
    exit 130
}
trap interrupted INT TERM

passed=0 failed=0 skipped=0
failed_list=() skipped_list=() part_list=()
t_all=$SECONDS
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]} cmd=${CMDS[$i]}
    echo "== $name"
    t0=$SECONDS
    prog=${cmd%% *}
    if [ "$prog" != bash ] && [ ! -x "$prog" ]; then
        rc=127 why="not built: no $prog"
        echo "$why"
    else
        # shellcheck disable=SC2086 # cmd is words: program and arguments
        timeout -k 30 "$TIMEOUT" $cmd &
        CHILD=$!
        wait "$CHILD"
        rc=$?
        CHILD=''
        why="exit status $rc"
        if [ $((SECONDS - t0)) -ge "$TIMEOUT" ] && { [ $rc = 124 ] || [ $rc = 137 ]; }; then
            why="timed out after $TIMEOUT s"
        elif [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
            why="killed by signal $((rc - 128))"
        fi
    fi
    secs=$((SECONDS - t0))
    case $rc in
    0) passed=$((passed + 1)); echo "== $name: passed in $secs s" ;;
    77) skipped=$((skipped + 1)); skipped_list+=("$name"); echo "== $name: skipped" ;;
    78) passed=$((passed + 1)); part_list+=("$name"); echo "== $name: passed in $secs s, some tests skipped" ;;
    *) failed=$((failed + 1)); failed_list+=("$name ($why)"); echo "== $name: FAILED in $secs s ($why)" ;;
    esac
done

echo "== summary: ${#NAMES[@]} suites and scripts in $(((SECONDS - t_all) / 60)) min $(((SECONDS - t_all) % 60)) s"
[ ${#failed_list[@]} -eq 0 ] || printf 'failed: %s\n' "${failed_list[@]}"
[ ${#skipped_list[@]} -eq 0 ] || echo "skipped: ${skipped_list[*]}"
[ ${#part_list[@]} -eq 0 ] || echo "skipped in part (passed the rest): ${part_list[*]}"
if [ ${#skipped_list[@]} -gt 0 ] || [ ${#part_list[@]} -gt 0 ]; then
    if [ ! -d "$SHARED/imagenet" ]; then
        echo "no $SHARED/imagenet (SHARED=$SHARED): ${#skipped_list[@]} skipped and" \
            "${#part_list[@]} skipped in part for want of it; make test SHARED=DIR names another place"
    fi
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
