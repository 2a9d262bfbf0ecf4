#!/usr/bin/env bash
# Fleet benchmark: the bare baseline and the real server (SQLite, then PostgreSQL) under the
# same simulated fleet, in one run, on loopback. Prints a table with each figure and its
# ratio to the baseline. See docs/PERFORMANCE.md, "Fleet simulator and baseline".
#
#   scripts/bench-fleet.sh                    # 2000 agents
#   AGENTS=500 IDLE_SECS=10 scripts/bench-fleet.sh
#
# Settings (environment):
#   AGENTS         simulated agents (default 2000; keep it modest on a small machine)
#   HOLD_SECS      hold once all are connected (default 20)
#   FLOOD_REPORTS  metrics reports each agent sends back to back in the flood (default 20)
#   COMMANDS       commands in the commands scenario, one after another (default 200)
#   IDLE_SECS      wait after the fleet disconnects before the last RSS sample (default 60)
#   RAMP           agents started per second (default 500)
#   PG_BASE        PostgreSQL server (default postgres://postgres@127.0.0.1:5432, trust auth)
#   CARGO_TARGET_DIR  where to build (default ./target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTS=${AGENTS:-2000}
HOLD_SECS=${HOLD_SECS:-20}
FLOOD_REPORTS=${FLOOD_REPORTS:-20}
COMMANDS=${COMMANDS:-200}
IDLE_SECS=${IDLE_SECS:-60}
RAMP=${RAMP:-500}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
CLK=$(getconf CLK_TCK)
EMAIL=bench@example.com
PASSWORD=bench-fleet-password-1

for tool in jq curl psql; do
    command -v "$tool" >/dev/null || { echo "bench-fleet: needs $tool" >&2; exit 1; }
done

echo "== building release binaries (gururmm-server, gururmm-fleet-sim, gururmm-bare-baseline)" >&2
(cd "$ROOT" && cargo build --release -p gururmm-server -p gururmm-fleet-sim) >&2

WORK=$(mktemp -d /tmp/bench-fleet.XXXXXX)
PG_DB=""
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [ -n "$PG_DB" ]; then psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# CPU time (user + system) of a process in clock ticks. The fields after "(comm) " start at
# the state (field 3 of the full line), so utime and stime are the 12th and 13th.
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {
    for _ in $(seq 1 300); do
        curl -fs "$1/api/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench-fleet: $1 did not answer" >&2; exit 1
}

wait_file() { # file pid: until the file exists or the process ended
    while [ ! -e "$1" ] && kill -0 "$2" 2>/dev/null; do sleep 0.05; done
}

# Waits until the process uses under 2% of a core over 1 s (or 120 s passed).
wait_idle() {
    local pid=$1 a b
    for _ in $(seq 1 120); do
        a=$(ticks "$pid"); sleep 1; b=$(ticks "$pid")
        [ $(( (b - a) * 100 )) -lt $(( CLK * 2 )) ] && return 0
    done
}

declare -A R   # R[target:figure] = value

sim() { "$BIN/gururmm-fleet-sim" --agents "$AGENTS" --ramp-per-sec "$RAMP" --report-every-secs 10 "$@"; }

# Runs hold then flood (and commands when an API is given) against target $1 (pid $2,
# websocket URL $3, enrollment code $4, REST base $5 or empty), sampling the process.
measure() {
    local name=$1 pid=$2 ws=$3 code=$4 api=$5
    local keys=$WORK/$name.keys ready=$WORK/$name.ready
    R[$name:rss_start]=$(rss_kb "$pid")

    echo "== $name: hold ($AGENTS agents, ${HOLD_SECS}s once connected)" >&2
    local c0 c1 c2 t1 t2 simpid
    c0=$(ticks "$pid")
    rm -f "$ready"
    sim --server "$ws" --site-code "$code" --keys-file "$keys" --scenario hold \
        --duration-secs "$HOLD_SECS" --ready-file "$ready" >"$WORK/$name.hold.json" 2>"$WORK/$name.hold.err" &
    simpid=$!; PIDS+=("$simpid")
    wait_file "$ready" "$simpid"
    c1=$(ticks "$pid"); t1=$(now)
    sleep "$(calc "$HOLD_SECS - 1" 1)"
    c2=$(ticks "$pid"); t2=$(now)
    R[$name:rss_hold]=$(rss_kb "$pid")
    wait "$simpid" || true
    tail -n 2 "$WORK/$name.hold.err" >&2
    R[$name:connect_secs]=$(jq -r '.all_connected_secs // "never" | if type == "number" then (. * 100 | round / 100) else . end' "$WORK/$name.hold.json")
    R[$name:connect_cpu]=$(calc "($c1 - $c0) / $CLK")
    R[$name:hold_cpu_pct]=$(calc "($c2 - $c1) / $CLK / ($t2 - $t1) * 100")
    R[$name:rss_per_agent]=$(calc "(${R[$name:rss_hold]} - ${R[$name:rss_start]}) / $AGENTS" 1)
    R[$name:auth_failures]=$(jq -r '.counters.auth_failures' "$WORK/$name.hold.json")

    echo "== $name: flood ($FLOOD_REPORTS reports per agent, keys from the hold)" >&2
    local c3 c4 tr ti
    c3=$(ticks "$pid")
    rm -f "$ready"
    sim --server "$ws" --site-code "$code" --keys-file "$keys" --scenario flood \
        --reports-per-agent "$FLOOD_REPORTS" --duration-secs 120 --ready-file "$ready" \
        >"$WORK/$name.flood.json" 2>"$WORK/$name.flood.err" &
    simpid=$!; PIDS+=("$simpid")
    wait_file "$ready" "$simpid"
    tr=$(now)
    wait "$simpid" || true
    wait_idle "$pid"
    ti=$(now); c4=$(ticks "$pid")
    tail -n 2 "$WORK/$name.flood.err" >&2
    local sent
    sent=$(jq -r '.flood.reports_sent' "$WORK/$name.flood.json")
    R[$name:flood_sent_rate]=$(jq -r '.flood.reports_per_sec | floor' "$WORK/$name.flood.json")
    # Until the target was idle again: what it took to take every report in.
    R[$name:flood_drain_rate]=$(calc "$sent / ($ti - $tr) " 0)
    R[$name:flood_cpu]=$(calc "($c4 - $c3) / $CLK")

    if [ -n "$api" ]; then
        echo "== $name: commands ($COMMANDS, one after another)" >&2
        GURURMM_SIM_PASSWORD=$PASSWORD sim --server "$ws" --site-code "$code" --keys-file "$keys" \
            --scenario commands --commands "$COMMANDS" --concurrency 1 --duration-secs 0 \
            --api "$api" --email "$EMAIL" >"$WORK/$name.commands.json" 2>"$WORK/$name.commands.err" || true
        grep '^commands:' "$WORK/$name.commands.err" >&2 || tail -n 3 "$WORK/$name.commands.err" >&2
        for p in p50 p95 p99; do
            R[$name:cmd_$p]=$(jq -r ".commands.${p}_ms // \"-\" | if type == \"number\" then (. * 100 | round / 100) else . end" "$WORK/$name.commands.json" 2>/dev/null || echo -)
        done
        R[$name:cmd_completed]=$(jq -r '"\(.commands.completed)/\(.commands.submitted)"' "$WORK/$name.commands.json" 2>/dev/null || echo -)
    fi

    R[$name:rss_after]=$(rss_kb "$pid")
    echo "== $name: fleet gone; RSS again in ${IDLE_SECS}s" >&2
    sleep "$IDLE_SECS"
    R[$name:rss_idle]=$(rss_kb "$pid")
}

# The real server: fresh data dir, given database URL; admin, client and site; then measure.
run_server() {
    local name=$1 dburl=$2
    local port data
    port=$(free_port); data=$WORK/$name.data; mkdir -p "$data"
    local env=(GURURMM_LISTEN=127.0.0.1:$port GURURMM_DATA_DIR=$data GURURMM_DATABASE_URL=$dburl
        GURURMM_LOG=warn GURURMM_ENROLLMENTS_PER_MINUTE_PER_ADDRESS=100000
        GURURMM_COMMANDS_PER_MINUTE_PER_USER=100000 GURURMM_COMMANDS_PER_MINUTE_PER_AGENT=100000)
    env "${env[@]}" "$BIN/gururmm-server" user add --email "$EMAIL" --role admin --password "$PASSWORD" >/dev/null
    env "${env[@]}" "$BIN/gururmm-server" 2>"$WORK/$name.server.log" >/dev/null &
    local pid=$!; PIDS+=("$pid")
    local base=http://127.0.0.1:$port
    wait_http "$base"
    local token client code
    token=$(curl -fs "$base/api/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | jq -r .token)
    client=$(curl -fs "$base/api/clients" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"Bench Client"}' | jq -r .id)
    code=$(curl -fs "$base/api/sites" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"client_id\":\"$client\",\"name\":\"Bench Site\"}" | jq -r .site_code)
    measure "$name" "$pid" "ws://127.0.0.1:$port/ws" "$code" "$base"
    local errors
    errors=$(grep -c ERROR "$WORK/$name.server.log" || true)
    R[$name:server_errors]=$errors
    if [ "$errors" != 0 ]; then
        echo "== $name: $errors ERROR lines in the server log; the most common:" >&2
        grep ERROR "$WORK/$name.server.log" | sed 's/\x1b\[[0-9;]*m//g; s/^[^ ]* *//' | cut -c1-160 | sort | uniq -c | sort -rn | head -3 >&2
    fi
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
}

# 1. Baseline.
port=$(free_port)
"$BIN/gururmm-bare-baseline" --listen "127.0.0.1:$port" --report-every-secs 3600 >"$WORK/baseline.json" 2>"$WORK/baseline.err" &
BPID=$!; PIDS+=("$BPID")
sleep 0.3
measure baseline "$BPID" "ws://127.0.0.1:$port/ws" "BENCH-SITE-1" ""
kill -TERM "$BPID"; wait "$BPID" || true

# 2. Real server on SQLite.
run_server sqlite "sqlite://$WORK/sqlite.data/gururmm.db"

# 3. Real server on PostgreSQL (a fresh database).
PG_DB=gururmm_bench_$(date +%s)_$$
psql -q "$PG_BASE/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
run_server postgres "$PG_BASE/$PG_DB"

# The table.
mib() { calc "$1 / 1024" 1; }
row() { # label figure [unit-transform]
    local label=$1 key=$2 tf=${3:-} b s p
    b=${R[baseline:$key]:--}; s=${R[sqlite:$key]:--}; p=${R[postgres:$key]:--}
    if [ "$tf" = mib ]; then
        [ "$b" != - ] && b=$(mib "$b"); [ "$s" != - ] && s=$(mib "$s"); [ "$p" != - ] && p=$(mib "$p")
    fi
    ratio() {
        if [[ "$b" =~ ^[0-9.]+$ && "$1" =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($b > 0)}"; then
            printf '%s (%sx)' "$1" "$(calc "$1 / $b" 1)"
        else
            printf '%s' "$1"
        fi
    }
    printf '| %s | %s | %s | %s |\n' "$label" "$b" "$(ratio "$s")" "$(ratio "$p")"
}
echo
echo "Fleet benchmark: $AGENTS agents, ramp $RAMP/s, hold ${HOLD_SECS}s, flood $FLOOD_REPORTS reports/agent, $COMMANDS commands; $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| figure | baseline | server SQLite (x baseline) | server PostgreSQL (x baseline) |"
echo "|---|---|---|---|"
row "all connected after (s, from sim start)" connect_secs
row "auth failures while enrolling (retried)" auth_failures
row "CPU to connect + enroll the fleet (s)" connect_cpu
row "CPU during hold (% of one core)" hold_cpu_pct
row "RSS before the fleet (MiB)" rss_start mib
row "RSS during hold (MiB)" rss_hold mib
row "RSS per agent (KiB)" rss_per_agent
row "flood: reports/s sent (sim side)" flood_sent_rate
row "flood: reports/s until target idle" flood_drain_rate
row "flood: CPU incl. reconnect (s)" flood_cpu
row "command round trip p50 (ms)" cmd_p50
row "command round trip p95 (ms)" cmd_p95
row "command round trip p99 (ms)" cmd_p99
row "commands completed" cmd_completed
row "RSS right after the fleet left (MiB)" rss_after mib
row "RSS ${IDLE_SECS}s after the fleet left (MiB)" rss_idle mib
row "ERROR lines in the server log" server_errors
