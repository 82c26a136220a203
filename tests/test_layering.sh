#!/usr/bin/env bash
# The layering of src/: no cycle among its modules, neither in the #include
# graph nor in the link graph of the built objects (tools/depgraph.py --check;
# objects in IMGCLASS_BUILD, default build, which make builds first). Prints
# both graphs, one line per module; on a cycle, names its modules and the
# include lines or symbols behind each edge, and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 tools/depgraph.py --check --build "${IMGCLASS_BUILD:-build}" src
