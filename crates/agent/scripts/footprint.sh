#!/usr/bin/env bash
# Measures the agent's footprint: the release binary's size, and its RSS and CPU while idle
# and connected to a local server for DURATION seconds (default 300), with the default
# intervals (heartbeat 30 s, metrics 60 s, network check 30 s).
#
#   crates/agent/scripts/footprint.sh            # from the repository root
#   DURATION=60 crates/agent/scripts/footprint.sh
#
# Uses only 127.0.0.1. Builds the release agent once (skipped when it exists) and the debug
# server.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DURATION=${DURATION:-300}
PORT=${PORT:-39471}
work=$(mktemp -d)
agent_pid=""
server_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

[ -x target/release/gururmm-agent ] || cargo build --release -p gururmm-agent
cargo build -q -p gururmm-server --bin gururmm-server
agent_bin=target/release/gururmm-agent
echo "binary: $(stat -c %s "$agent_bin") bytes ($agent_bin)"

export GURURMM_LISTEN="127.0.0.1:$PORT" GURURMM_DATA_DIR="$work/server"
base="http://127.0.0.1:$PORT"
GURURMM_USER_PASSWORD='footprint-password-1' target/debug/gururmm-server user add \
  --email footprint@example.com --role admin >/dev/null
target/debug/gururmm-server >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "$base/api/health" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }
token=$(curl -fs -X POST "$base/api/auth/login" -H 'content-type: application/json' \
  -d '{"email": "footprint@example.com", "password": "footprint-password-1"}' | json '["token"]')
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
client=$(curl -fs -X POST "$base/api/clients" "${auth[@]}" -d '{"name": "Footprint"}' | json '["id"]')
code=$(curl -fs -X POST "$base/api/sites" "${auth[@]}" \
  -d "{\"client_id\": \"$client\", \"name\": \"Bench\"}" | json '["site_code"]')

cat >"$work/agent.toml" <<TOML
[server]
url = "ws://127.0.0.1:$PORT/ws"
api_key = "$code"

[agent]
state_dir = "$work/state"
log_dir = "$work/logs"
TOML
"$agent_bin" run --config "$work/agent.toml" 2>"$work/agent.err" &
agent_pid=$!
sleep 5
curl -fs "$base/api/agents" "${auth[@]}" | json '[0]["status"]' | sed 's/^/agent status: /'

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status"; }
t0=$(cpu_ticks); r0=$(rss_kb); s0=$(date +%s.%N)
echo "start: rss ${r0} kB, cpu ${t0} ticks; measuring for ${DURATION} s"
sleep "$DURATION"
t1=$(cpu_ticks); r1=$(rss_kb); s1=$(date +%s.%N)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$agent_pid/status")
echo "end:   rss ${r1} kB (peak ${hwm} kB), cpu ${t1} ticks"
python3 - "$t0" "$t1" "$s0" "$s1" "$ticks" <<'PY'
import sys
t0, t1, s0, s1, hz = map(float, sys.argv[1:])
cpu = (t1 - t0) / hz
print(f"cpu: {cpu:.2f} s over {s1 - s0:.0f} s = {100 * cpu / (s1 - s0):.3f} % of one core")
PY
ps -o pid,rss,vsz,time,nlwp,cmd -p "$agent_pid"
curl -fs "$base/api/agents" "${auth[@]}" | json '[0]["status"]' | sed 's/^/agent status at end: /'
