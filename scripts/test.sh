#!/usr/bin/env bash
# Runs every test: builds the dashboard (the server embeds it, and a Rust test starts the
# server binary alone and loads the dashboard from it), then the Rust workspace (each storage
# and server test on SQLite and on PostgreSQL), then the dashboard's unit tests and its
# browser end-to-end tests.
# Needs PostgreSQL on 127.0.0.1:5432 (or GURURMM_TEST_POSTGRES_URL); see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test databases are named gururmm_test_<uuid>; drop those a previous run left behind.
pg_url="${GURURMM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if command -v psql >/dev/null; then
  psql "$pg_url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'gururmm_test_%'" 2>/dev/null |
    while read -r db; do psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
fi

if [ -f dashboard/package.json ]; then
  echo "== Dashboard build (embedded into gururmm-server)"
  (cd dashboard && npm ci --no-audit --no-fund && npm run build)
fi

echo "== Agent builds for the self-update tests (version 99.0.0, and one that exits at start)"
./scripts/build-update-builds.sh
export GURURMM_UPDATE_BUILDS="${GURURMM_UPDATE_BUILDS:-$PWD/target/update-builds}"

echo "== Rust tests (SQLite and PostgreSQL)"
cargo nextest run --workspace --no-fail-fast

if [ -f dashboard/package.json ]; then
  echo "== Dashboard unit tests"
  (cd dashboard && npm test)
  if [ -f dashboard/e2e/run.mjs ]; then
    echo "== Dashboard end-to-end tests (Chromium, real server, real agent)"
    cargo build -p gururmm-server -p gururmm-agent
    node dashboard/e2e/run.mjs
    echo "== Single sign-on end to end (Chromium, real server, oidc-provider as the OpenID Connect provider)"
    node dashboard/e2e/sso.mjs
  fi
  echo "== A fresh install: serve.sh on an empty data folder, the site page's Linux install command, the agent online"
  ./scripts/test-fresh-install.sh
fi
