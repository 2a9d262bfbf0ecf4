#!/usr/bin/env bash
# Restart storm: N simulated agents enrolled and connected to the real server, which is then
# killed with SIGKILL and started again at once; prints how long until every agent is back,
# and the pool-wait warnings and errors the server logged during the storm.
#
#   N=19000 DB=pg scripts/bench-restart-storm.sh       # PostgreSQL (a fresh database "storm")
#   N=19000 DB=sqlite scripts/bench-restart-storm.sh
#
# Loopback only (port 3912). Needs jq, curl and (for DB=pg) psql with trust auth on
# 127.0.0.1:5432. The simulated agents first retry after 1 to 2 s, harsher than the real
# agent (1 to 10 s).
set -u
N=${N:-19000}
DB=${DB:-pg}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release -p gururmm-server -p gururmm-fleet-sim) >&2
B=$CARGO_TARGET_DIR/release
W=$(mktemp -d /tmp/restart-storm.XXXXXX)
cd "$W"
if [ "$DB" = pg ]; then
    psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS storm" -c "CREATE DATABASE storm"
    URL=postgres://postgres@127.0.0.1:5432/storm
else
    URL=sqlite://$W/data/gururmm.db
fi
export GURURMM_LISTEN=127.0.0.1:3912 GURURMM_DATA_DIR=$W/data GURURMM_DATABASE_URL=$URL GURURMM_LOG=warn \
    GURURMM_ENROLLMENTS_PER_MINUTE_PER_ADDRESS=100000
"$B/gururmm-server" user add --email storm@example.com --role admin --password storm-password-123 >/dev/null
start() { "$B/gururmm-server" >>server.log 2>&1 & echo $! >pid; }
trap 'kill -9 $(cat "$W/pid") 2>/dev/null; rm -rf "$W"' EXIT
start
for _ in $(seq 100); do curl -sf localhost:3912/api/health >/dev/null && break; sleep 0.1; done
json() { curl -sf -XPOST "localhost:3912$1" -H 'content-type: application/json' ${T:+-H "authorization: Bearer $T"} -d "$2"; }
T=$(json /api/auth/login '{"email":"storm@example.com","password":"storm-password-123"}' | jq -r .token)
C=$(json /api/clients '{"name":"Storm"}' | jq -r .id)
CODE=$(json /api/sites "{\"client_id\":\"$C\",\"name\":\"Storm\"}" | jq -r .site_code)

echo "== enrolling $N agents (once)"
"$B/gururmm-fleet-sim" --server ws://127.0.0.1:3912/ws --site-code "$CODE" --agents "$N" --ramp-per-sec 500 \
    --keys-file keys.jsonl --scenario hold --duration-secs 1 --connect-wait-secs 300 >/dev/null 2>enroll.err
tail -1 enroll.err

echo "== storm: the fleet reconnects with its keys; SIGKILL and restart 15 s after all are connected"
"$B/gururmm-fleet-sim" --server ws://127.0.0.1:3912/ws --agents "$N" --ramp-per-sec 2000 --keys-file keys.jsonl \
    --scenario restart-storm --duration-secs 75 --backoff-min-ms 1000 --backoff-max-ms 10000 \
    --ready-file ready >storm.json 2>storm.err &
sim=$!
while [ ! -e ready ]; do sleep 0.5; done
sleep 15
killed_at=$(date -u +%Y-%m-%dT%H:%M:%S)
kill -9 "$(cat pid)"
start
wait $sim
grep '^\[storm\]' storm.err
strip() { sed 's/\x1b\[[0-9;]*m//g' server.log; }
echo "pool-wait warnings during the storm: $(strip | awk -v t="$killed_at" '$1 >= t' | grep -c 'slow threshold')"
echo "error lines during the storm: $(strip | awk -v t="$killed_at" '$1 >= t' | grep -c ' ERROR ')"
