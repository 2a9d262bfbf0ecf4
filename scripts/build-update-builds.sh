#!/usr/bin/env bash
# Builds the two extra agent binaries the self-update tests (crates/agent/tests/self_update.rs)
# install: the agent with GURURMM_AGENT_VERSION=99.0.0 (the "new" build), and the same with
# GURURMM_AGENT_EXIT_AT_START=1 (a build that fails at once, to be rolled back). They go to
# target/update-builds/ (or $GURURMM_UPDATE_BUILDS); the tests find them through that variable.
# Built in their own target folder, so target/debug/gururmm-agent is never touched; the second
# build recompiles only the agent crate.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${GURURMM_UPDATE_BUILDS:-$PWD/target/update-builds}"
target="${GURURMM_UPDATE_BUILDS_TARGET:-$PWD/target/update-builds-target}"
mkdir -p "$out"
GURURMM_AGENT_VERSION=99.0.0 cargo build -p gururmm-agent --bin gururmm-agent --target-dir "$target"
cp "$target/debug/gururmm-agent" "$out/gururmm-agent-99.0.0.tmp"
mv "$out/gururmm-agent-99.0.0.tmp" "$out/gururmm-agent-99.0.0"
GURURMM_AGENT_VERSION=99.0.0 GURURMM_AGENT_EXIT_AT_START=1 \
  cargo build -p gururmm-agent --bin gururmm-agent --target-dir "$target"
cp "$target/debug/gururmm-agent" "$out/gururmm-agent-exit-at-start.tmp"
mv "$out/gururmm-agent-exit-at-start.tmp" "$out/gururmm-agent-exit-at-start"
echo "update builds in $out"
