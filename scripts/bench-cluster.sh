#!/usr/bin/env bash
# Three server nodes on one PostgreSQL under one simulated fleet: the fleet is spread over the
# nodes, commands are submitted through node 0 only (so two thirds cross nodes), and their
# round trip is timed to `completed` on node 0's event stream. Prints each node's RSS and CPU
# during the hold and the round-trip percentiles.
#
#   N=15000 COMMANDS=300 scripts/bench-cluster.sh
#
# Loopback only (ports 3921-3923). Needs jq, curl, psql (trust auth on 127.0.0.1:5432).
set -u
N=${N:-15000}
COMMANDS=${COMMANDS:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release -p gururmm-server -p gururmm-fleet-sim) >&2
B=$CARGO_TARGET_DIR/release
W=$(mktemp -d /tmp/bench-cluster.XXXXXX)
cd "$W"
psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS cluster_bench" -c "CREATE DATABASE cluster_bench"
export GURURMM_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cluster_bench GURURMM_LOG=warn \
    GURURMM_JWT_SECRET=cluster-bench-secret-0123456789abcdef \
    GURURMM_ENROLLMENTS_PER_MINUTE_PER_ADDRESS=100000 \
    GURURMM_COMMANDS_PER_MINUTE_PER_USER=100000 GURURMM_COMMANDS_PER_MINUTE_PER_AGENT=100000
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; rm -rf "$W"' EXIT
for i in 1 2 3; do
    mkdir -p "n$i"
    GURURMM_LISTEN=127.0.0.1:392$i GURURMM_DATA_DIR=$W/n$i "$B/gururmm-server" >"n$i.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "localhost:392$i/api/health" >/dev/null && break; sleep 0.1; done
done
GURURMM_DATA_DIR=$W/n1 "$B/gururmm-server" user add --email bench@example.com --role admin --password bench-password-123 >/dev/null
json() { curl -sf -XPOST "localhost:3921$1" -H 'content-type: application/json' ${T:+-H "authorization: Bearer $T"} -d "$2"; }
T=$(json /api/auth/login '{"email":"bench@example.com","password":"bench-password-123"}' | jq -r .token)
C=$(json /api/clients '{"name":"Cluster"}' | jq -r .id)
CODE=$(json /api/sites "{\"client_id\":\"$C\",\"name\":\"Cluster\"}" | jq -r .site_code)
servers=ws://127.0.0.1:3921/ws,ws://127.0.0.1:3922/ws,ws://127.0.0.1:3923/ws

echo "== enrolling $N agents over three nodes"
"$B/gururmm-fleet-sim" --server "$servers" --site-code "$CODE" --agents "$N" --ramp-per-sec 500 \
    --keys-file keys.jsonl --scenario hold --duration-secs 1 --connect-wait-secs 300 >/dev/null 2>enroll.err
tail -1 enroll.err

ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
echo "== holding $N agents, then $COMMANDS commands through node 1 (of 3)"
"$B/gururmm-fleet-sim" --server "$servers" --agents "$N" --ramp-per-sec 2000 --keys-file keys.jsonl \
    --scenario commands --commands "$COMMANDS" --api http://127.0.0.1:3921 --email bench@example.com \
    --password bench-password-123 --duration-secs 20 --ready-file ready >commands.json 2>commands.err &
sim=$!
while [ ! -e ready ]; do sleep 0.5; done
sleep 5
declare -A t0
for p in "${PIDS[@]}"; do t0[$p]=$(ticks "$p"); done
sleep 10
clk=$(getconf CLK_TCK)
for i in 0 1 2; do
    p=${PIDS[$i]}
    echo "node $((i + 1)): RSS $(rss_mb "$p") MiB, CPU $(awk "BEGIN {printf \"%.1f\", ($(ticks "$p") - ${t0[$p]}) * 100 / $clk / 10}") % of a core over 10 s of hold"
done
wait $sim
grep '^commands:' commands.err
jq -c '{all_connected_secs, no_duplicate_commands, every_command_answered}' commands.json
