#!/usr/bin/env bash
# Builds the two extra agent binaries the self-update tests (crates/agent/tests/self_update.rs)
# install: the agent with GURURMM_AGENT_VERSION=99.0.0 (the "new" build), and the same with
# GURURMM_AGENT_EXIT_AT_START=1 (a build that fails at once, to be rolled back). They go to
# target/update-builds/ (or $GURURMM_UPDATE_BUILDS); the tests find them through that variable.
#
# Built in the normal target folder (a folder of their own would compile every dependency a
# second time on a fresh machine): each build recompiles only the agent crate, and the normal
# agent is built again last, so target/debug/gururmm-agent is the normal one afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${GURURMM_UPDATE_BUILDS:-$PWD/target/update-builds}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$out"
build() { cargo build -q -p gururmm-agent --bin gururmm-agent; }
keep() {
  cp "$target/debug/gururmm-agent" "$out/$1.tmp"
  mv "$out/$1.tmp" "$out/$1"
}
GURURMM_AGENT_VERSION=99.0.0 build
keep gururmm-agent-99.0.0
GURURMM_AGENT_VERSION=99.0.0 GURURMM_AGENT_EXIT_AT_START=1 build
keep gururmm-agent-exit-at-start
(unset GURURMM_AGENT_VERSION GURURMM_AGENT_EXIT_AT_START; build)
echo "update builds in $out"
