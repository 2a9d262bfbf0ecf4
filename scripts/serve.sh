#!/usr/bin/env bash
# Builds the dashboard, then the server and the Linux agent in release mode (the server embeds
# the dashboard: the binary target/release/gururmm-server alone is the whole server), publishes
# the agent build so the site page's install command works, and starts the server on the
# embedded SQLite database in ./data, serving the dashboard at http://localhost:3001/.
#
# On first start it creates a DEVELOPMENT release key in the data folder (data/release.key
# and data/release.pub) and signs the agent build with it. For production keep the private
# key off the server: see docs/OPERATIONS.md, "Agent releases and updates".
# Extra arguments go to gururmm-server; settings come from GURURMM_* variables (README.md).
# SERVE_PROFILE=dev builds debug binaries instead (faster to build; the tests use it).
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

profile="${SERVE_PROFILE:-release}"
cargo build --profile "$profile" -p gururmm-server -p gururmm-agent
case "$profile" in dev) out=debug ;; *) out="$profile" ;; esac
target="${CARGO_TARGET_DIR:-target}/$out"
server="$target/gururmm-server"
agent="$target/gururmm-agent"
data="${GURURMM_DATA_DIR:-data}"
export GURURMM_DATA_DIR="$data"

if [ ! -f "$data/release.pub" ]; then
  mkdir -p "$data"
  "$server" release keygen --out "$data/release" >/dev/null
  echo "serve.sh: created a development release key: $data/release.key (private) and $data/release.pub;"
  echo "          agent builds are signed with it. For production keep the private key off the server (docs/OPERATIONS.md)."
fi

# Publish the agent build unless this very build is already the one served.
arch="$(uname -m)"
case "$arch" in x86_64 | aarch64) ;; *) arch="" ;; esac
if [ -n "$arch" ] && [ -f "$data/release.key" ]; then
  stable="${GURURMM_DOWNLOADS_DIR:-$data/downloads}/gururmm-agent-linux-$arch"
  if [ -f "$stable" ] && cmp -s "$stable" "$agent"; then
    echo "serve.sh: the agent build is already published ($stable)"
  else
    version="$("$agent" --version | awk '{print $2}')"
    # The same version rebuilt gets a development pre-release version (older than $version,
    # so a rollout of $version never moves an agent to it).
    if ! "$server" release add --file "$agent" --version "$version" --os linux --arch "$arch" --key "$data/release.key" 2>/dev/null; then
      "$server" release add --file "$agent" --version "$version-dev.$(date +%s)" --os linux --arch "$arch" --key "$data/release.key"
      # The install commands fetch the stable name: this build from now on.
      install -m 755 "$agent" "$stable"
    fi
  fi
fi

exec "$server" "$@"
