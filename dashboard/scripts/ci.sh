#!/usr/bin/env bash
# The dashboard's part of CI: unit tests, the production build, and the browser end-to-end test
# against the real server and agent (built beforehand by `cargo build -p gururmm-server -p gururmm-agent`).
# Usage from the repository root: bash dashboard/scripts/ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm test
npm run build
node e2e/run.mjs
