#!/usr/bin/env bash
# A new user's first steps, end to end: ./scripts/serve.sh on an empty data folder (as in a
# fresh clone: no release key, nothing published), the first administrator, a client and a
# site, then the site page's Linux install command (the dashboard's own code builds it) run
# in a temporary folder instead of / (paths rewritten, no systemd unit: the last line,
# `gururmm-agent install`, becomes `gururmm-agent run`), and the agent comes online.
# FRESH_CLONE=1 runs it in a `git clone` of this repository (a full rebuild there).
# SERVE_PROFILE (default dev, the debug build scripts/test.sh has already made) is passed on.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
server_pid=""
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- serve.sh output" >&2
  tail -n 40 "$tmp/serve.log" >&2 || true
  [ -f "$tmp/agent.log" ] && { echo "--- agent output" >&2; tail -n 40 "$tmp/agent.log" >&2; }
  exit 1
}

src="$repo"
if [ "${FRESH_CLONE:-0}" = 1 ]; then
  git clone -q "$repo" "$tmp/clone"
  src="$tmp/clone"
  [ -d "$repo/dashboard/node_modules" ] && ln -s "$repo/dashboard/node_modules" "$src/dashboard/node_modules"
fi
export SERVE_PROFILE="${SERVE_PROFILE:-dev}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
case "$SERVE_PROFILE" in dev) out=debug ;; *) out="$SERVE_PROFILE" ;; esac
bin="$CARGO_TARGET_DIR/$out"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export GURURMM_DATA_DIR="$tmp/data"
export GURURMM_LISTEN="127.0.0.1:$port"

start=$(date +%s)
(cd "$src" && exec ./scripts/serve.sh) >"$tmp/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
  curl -fs "$base/api/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "serve.sh exited"
  sleep 0.5
done
curl -fs "$base/api/health" >/dev/null || fail "the server did not come up"
grep -q "created a development release key" "$tmp/serve.log" || fail "serve.sh did not say it created a release key"
[ -f "$tmp/data/release.pub" ] || fail "no release.pub in the data folder"
curl -fs "$base/downloads/gururmm-agent-linux-$(uname -m)" -o /dev/null || fail "the agent build is not published"

"$bin/gururmm-server" user add --email admin@example.com --password 'fresh clone password 1' >/dev/null
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token="$(curl -fs "$base/api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"admin@example.com","password":"fresh clone password 1"}' | json "['token']")"
api() { curl -fs -H "authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
client="$(api "$base/api/clients" -d '{"name":"Fresh Clone Ltd"}' | json "['id']")"
code="$(api "$base/api/sites" -d "{\"client_id\":\"$client\",\"name\":\"Head office\"}" | json "['site_code']")"
[ "$(api "$base/api/releases" | json "[0]['os']")" = linux ] || fail "GET /api/releases lists no linux build"

# The site page's command, from the dashboard's own code (src/lib/install.ts).
(cd "$repo/dashboard" && node -e '
  const ts = require("typescript");
  const fs = require("fs");
  const out = ts.transpileModule(fs.readFileSync("src/lib/install.ts", "utf8"),
    { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } });
  const m = { exports: {} };
  new Function("module", "exports", out.outputText)(m, m.exports);
  process.stdout.write(m.exports.linuxInstall(process.argv[1], { protocol: "http:", host: process.argv[2] }));
' "$code" "127.0.0.1:$port") >"$tmp/install.sh"
[ "$(tail -n 1 "$tmp/install.sh")" = "gururmm-agent install" ] || fail "the install command no longer ends with 'gururmm-agent install'"
mkdir -p "$tmp/root/usr/local/bin" "$tmp/root/state" "$tmp/root/logs"
sed -e '$d' -e "s#/usr/local/bin#$tmp/root/usr/local/bin#g" -e "s#/etc/gururmm#$tmp/root/etc/gururmm#g" \
  "$tmp/install.sh" >"$tmp/install-here.sh"
bash -euo pipefail "$tmp/install-here.sh" || fail "the install command failed"
printf '\n[agent]\nstate_dir = "%s"\nlog_dir = "%s"\n' "$tmp/root/state" "$tmp/root/logs" >>"$tmp/root/etc/gururmm/agent.toml"
"$tmp/root/usr/local/bin/gururmm-agent" run --config "$tmp/root/etc/gururmm/agent.toml" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 60); do
  [ "$(api "$base/api/agents" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(len(a) == 1 and a[0]["online"])')" = True ] && break
  sleep 0.5
done
[ "$(api "$base/api/agents" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(len(a) == 1 and a[0]["online"])')" = True ] ||
  fail "the agent did not come online"
echo "fresh install: the agent installed from the site page's command is online ($(($(date +%s) - start)) s)"
