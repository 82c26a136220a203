#!/usr/bin/env bash
# Lints openapi.yaml with Redocly CLI (the version pinned in package-lock.json)
# and the rules of tools/openapi/redocly.yaml. Installs the pinned packages
# into tools/openapi/node_modules first when they are missing or stale.
# Usage: tools/openapi/lint.sh [SPEC]   (default: openapi.yaml at the top)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
spec="$(realpath "${1:-$top/openapi.yaml}")"

cd "$here"
# npm ci leaves node_modules/.package-lock.json, a copy of the lockfile's
# packages; reinstall when it is absent or older than package-lock.json.
if [ ! -x node_modules/.bin/redocly ] || [ ! -f node_modules/.package-lock.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "lint.sh: installing the pinned @redocly/cli (npm ci)"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec node_modules/.bin/redocly lint --config "$here/redocly.yaml" "$spec"
