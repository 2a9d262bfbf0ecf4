#!/usr/bin/env bash
# Builds the dashboard, then the server in release mode (which embeds the dashboard: the
# binary target/release/gururmm-server alone is the whole server), and starts it on the
# embedded SQLite database in ./data, serving the dashboard at http://localhost:3001/.
# Extra arguments go to gururmm-server; settings come from GURURMM_* variables (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f dashboard/package.json ]; then
  if [ ! -d dashboard/node_modules ]; then
    (cd dashboard && npm ci --no-audit --no-fund)
  fi
  # Rebuild when any dashboard source is newer than the last build.
  if [ ! -f dashboard/dist/index.html ] || [ -n "$(find dashboard/src dashboard/index.html -newer dashboard/dist/index.html 2>/dev/null | head -n 1)" ]; then
    (cd dashboard && npm run build)
  fi
fi

cargo build --release -p gururmm-server
exec ./target/release/gururmm-server "$@"
