#!/bin/sh
# Installs the Debian packages that are missing among those named:
#
#   tools/deps.sh TARGET PACKAGE...      (TARGET: what to call it in messages, "make run")
#
# The Makefile's set-up step before `make run`, `make test`, `make deploy-check`
# and `make deps`. Silent when every package is installed. As root: apt-get
# update, then apt-get install of the missing ones. Otherwise: names them and
# the command that installs them, and exits 1. Where there is no dpkg-query
# (not Debian), says what to install and carries on.
set -eu
[ $# -ge 1 ] || { echo "usage: tools/deps.sh TARGET PACKAGE..." >&2; exit 2; }
target=$1
shift
[ $# -gt 0 ] || exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "$target: no dpkg-query here (not Debian?); the build expects the Debian 12 packages: $*" >&2
    exit 0
fi
# Installed: the second letter of db:Status-Abbrev is i ("ii", "hi"). A package
# dpkg has never heard of is not listed at all.
installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null |
    awk 'substr($1, 2, 1) == "i" { printf "%s ", $2 }') " || true
missing=
for p in "$@"; do
    case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
missing=${missing# }
[ -n "$missing" ] || exit 0

if [ "$(id -u)" != 0 ]; then
    cat >&2 <<MSG
$target: these Debian packages are missing: $missing
Install them as root, then run $target again:
    sudo apt-get update && sudo apt-get install -y $missing
(or: sudo make deps, which installs every package the build, the tests and deploy-check use)
MSG
    exit 1
fi
echo "$target: installing the missing Debian packages: $missing"
apt-get update -q
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
