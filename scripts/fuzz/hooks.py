"""Schemathesis hooks for scripts/fuzz-api.sh.

Random input mostly meets 4xx answers: a generated id names nothing, a generated email is not
an address. So that every operation is also reached with requests the server accepts, a share of
the cases get known-good values from resources the script made before the run (FUZZ_SEED_FILE):
real ids, the site code, the fuzz agent's key for the agent routes. The rest stay as generated.
"""

import itertools
import json
import os
import random

import schemathesis

SEED = json.load(open(os.environ["FUZZ_SEED_FILE"]))
_serial = itertools.count()
_spent = set()


def _spare(kind):
    """A resource made to be deleted or cancelled: each is used once."""
    for value in SEED["spare"][kind]:
        if value not in _spent:
            _spent.add(value)
            return value
    return None


FUZZ_HOOK_URL = "http://127.0.0.1:9/fuzz-hook"


def _good_path_id(method, path):
    if path.startswith("/api/clients/"):
        return _spare("clients") if method == "DELETE" else SEED["client_id"]
    if path == "/api/sites/{id}/regenerate-key":
        return SEED["rekey_site_id"]
    if path.startswith("/api/sites/"):
        return _spare("sites") if method == "DELETE" else SEED["site_id"]
    if path == "/api/agents/{id}/approve":
        return _spare("to_approve")
    if path == "/api/agents/{id}/reject":
        return _spare("to_reject")
    if path == "/api/agents/{id}/update":
        return _spare("to_update")
    if path == "/api/agents/{id}/update/retry":
        return _spare("to_retry")
    if path.startswith("/api/agents/"):
        return _spare("agents") if method == "DELETE" else SEED["agent_id"]
    if path == "/api/commands/{id}/cancel":
        return _spare("commands")
    if path.startswith("/api/commands/"):
        return SEED["command_ids"][0]
    if path.startswith("/api/users/"):
        return _spare("users")
    if path.startswith("/api/policies/"):
        return _spare("policies") if method == "DELETE" else SEED["policy_id"]
    if path.startswith("/api/policy-assignments/"):
        return _spare("assignments")
    if path.startswith("/api/notification-channels/"):
        return _spare("channels") if method == "DELETE" else SEED["channel_id"]
    if path.startswith("/api/notification-routes/"):
        return _spare("routes") if method == "DELETE" else SEED["route_id"]
    if path.startswith("/api/notification-deliveries/"):
        return SEED["delivery_id"]
    if path.startswith("/api/alert-rules/"):
        return _spare("rules") if method == "DELETE" else SEED["rule_id"]
    if path.startswith("/api/schedules/"):
        return _spare("schedules") if method == "DELETE" else SEED["schedule_id"]
    if path == "/api/jobs/{id}/cancel":
        return _spare("jobs")
    if path.startswith("/api/jobs/"):
        return SEED["job_id"]
    if path.startswith("/api/scripts/"):
        return _spare("scripts") if method == "DELETE" else SEED["script_id"]
    if path.startswith("/api/maintenance-windows/"):
        return _spare("windows") if method == "DELETE" else SEED["window_id"]
    if path == "/api/alerts/{id}/acknowledge":
        return _spare("to_acknowledge")
    if path == "/api/alerts/{id}/resolve":
        return _spare("to_resolve")
    if path.startswith("/api/alerts/"):
        return SEED["alert_id"]
    return None


def _good_body(method, path):
    n = next(_serial)
    if path in ("/api/clients", "/api/clients/{id}", "/api/sites/{id}"):
        return {"name": f"fuzz {n}", "notes": "made by the fuzzer"}
    if path == "/api/sites":
        return {"client_id": SEED["client_id"], "name": f"fuzz site {n}"}
    if path == "/api/agents":
        return {"hostname": f"fuzz-host-{n}", "site_id": SEED["site_id"]}
    if path == "/api/agents/{id}/move":
        return {"site_id": random.choice([SEED["site_id"], None])}
    if path == "/api/agents/{id}/command":
        return {"command_type": "shell", "command": f"echo fuzz {n}", "timeout_seconds": 60}
    if path == "/api/agents/{id}/update":
        return {"version": SEED["update_version"]}
    if path == "/api/rollouts/{os}/{arch}":
        return {"version": SEED["update_version"], "scope": "percentage", "percent": 10,
                "paused": True}
    if path == "/api/policies":
        return {"name": f"fuzz policy {n}-{random.getrandbits(32)}",
                "settings": {"metrics_interval_seconds": 30, "collectors": ["cpu", "memory"]}}
    if path == "/api/policies/{id}":
        return {"name": "fuzz policy", "description": f"change {n}",
                "settings": {"metrics_interval_seconds": random.choice([30, 60])}}
    if path == "/api/policy-assignments":
        target = _spare("to_assign")
        if target is None:
            return None
        return {"policy_id": SEED["policy_id"], "scope": {"kind": "agent", "id": target}}
    if path in ("/api/alert-rules", "/api/alert-rules/{id}"):
        return {"name": f"fuzz rule {n}", "kind": "cpu", "threshold": 90,
                "duration_seconds": 60, "severity": "warning", "scope": {"kind": "fleet"}}
    if path in ("/api/maintenance-windows", "/api/maintenance-windows/{id}"):
        return {"name": f"fuzz window {n}", "scope": {"kind": "site", "id": SEED["site_id"]},
                "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z"}
    if path in ("/api/scripts", "/api/scripts/{id}"):
        name = f"fuzz script {n}" if path == "/api/scripts" else "fuzz script"
        return {"name": name, "category": "Fuzz", "command_type": "shell",
                "body": f"echo \"$WHO\" {n}", "target_os": random.choice(["any", "linux"]),
                "parameters": [{"name": "WHO", "kind": "string", "default": "x"}]}
    if path in ("/api/schedules", "/api/schedules/{id}"):
        return {"name": f"fuzz schedule {n}", "cron": random.choice(["0 2 * * *", "*/15 * * * 1-5"]),
                "time_zone": random.choice(["UTC", "Europe/Berlin"]), "paused": random.random() < 0.5,
                "job": {"command": "uptime", "target": {"agent_ids": [SEED["agent_id"]]}}}
    if path == "/api/jobs":
        if random.random() < 0.5:
            return {"script_id": SEED["script_id"], "parameters": {"WHO": f"fuzz {n}; $(x)"},
                    "target": {"agent_ids": [SEED["agent_id"]]}, "expires_in_seconds": 600}
        return {"command": f"echo fuzz {n}", "target": {"site_id": SEED["site_id"]}}
    if path == "/api/scripts/import":
        return SEED["script_export"]
    if path in ("/api/alerts/{id}/acknowledge", "/api/alerts/{id}/resolve"):
        return {"note": f"fuzz {n}"}
    if path == "/api/settings":
        # Requiring a second factor of everyone is refused while the admin has none (409).
        return {"require_two_factor": False}
    if path in ("/api/users", "/api/auth/register"):
        return {"email": f"fuzz-{n}-{random.getrandbits(32)}@example.com",
                "password": "fuzz-password-123", "role": "viewer"}
    if path == "/api/auth/login":
        return {"email": SEED["admin_email"], "password": SEED["admin_password"]}
    if path == "/api/agent/register-legacy":
        return {"site_code": SEED["site_code"], "device_id": f"fuzz-device-{n}",
                "hostname": f"fuzz-legacy-{n}",
                "os_info": {"os_type": "windows", "os_version": "7", "arch": "x86_64"},
                "version": "0.1.0"}
    if path in ("/api/notification-channels", "/api/notification-channels/{id}"):
        # Loopback only; fuzz-api.sh also points the server's outbound HTTP at a dead proxy.
        return {"name": f"fuzz channel {n}", "kind": "webhook", "url": FUZZ_HOOK_URL,
                "secret": "fuzz-signing-secret-123"}
    if path in ("/api/notification-routes", "/api/notification-routes/{id}"):
        return {"channel_id": SEED["channel_id"],
                "min_severity": random.choice(["info", "warning", "critical"]),
                "scope": random.choice([{"kind": "fleet"}, {"kind": "site", "id": SEED["site_id"]}])}
    if path == "/api/agent/heartbeat":
        return {}
    if path == "/api/agent/command-result":
        return {"id": random.choice(SEED["command_ids"]), "exit_code": 0,
                "stdout": "fuzz", "stderr": "", "duration_ms": 5}
    return None


AGENT_ROUTES = r"^/api/agent/(heartbeat|command-result)$"
# Routes that end or change the caller's own session or second factor: called as throwaway
# users (seed.py), so the admin session the rest of the run uses stays alive.
SELF_ROUTES = {
    ("POST", "/api/auth/logout"): "logout",
    ("POST", "/api/auth/password"): "password",
    ("DELETE", "/api/auth/sessions/{id}"): "sessions",
    ("POST", "/api/auth/two-factor/confirm"): "confirm",
    ("POST", "/api/auth/two-factor/disable"): "disable",
}
SELF_REGEX = r"^/api/auth/(logout|password|sessions/\{id\}|two-factor/confirm|two-factor/disable)$"
DEAD_TOKEN = "not-a-session"
# The admin's current token (a new one after each fresh sign-in).
_tokens = {"admin": SEED["admin_token"]}
# Every token the admin was given in this run: a case may carry an earlier one.
_admin_tokens = {SEED["admin_token"]}


def _sign_in(email, password):
    import urllib.request
    req = urllib.request.Request(
        SEED["base_url"] + "/api/auth/login", method="POST",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["token"]


# Throwaway users handed out, by token: a case's Authorization header says which it runs as.
_self_by_token = {}


def _self_kind(case):
    return SELF_ROUTES.get((case.operation.method.upper(), case.operation.path))


@schemathesis.auth(refresh_interval=None).apply_to(path_regex=SELF_REGEX)
class ThrowawayUser:
    """A fresh throwaway user per case while the pool lasts; then a dead token (401)."""

    def get(self, case, context):
        kind = _self_kind(case)
        pool = SEED["self"].get(kind, []) if kind else []
        user = pool.pop(0) if pool else None
        if user:
            _self_by_token[user["token"]] = dict(user, kind=kind)
        return user["token"] if user else DEAD_TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth().skip_for(path_regex=AGENT_ROUTES).skip_for(path_regex=SELF_REGEX)
class AdminToken:
    """Every user route is called as the admin. The fuzzer may end the admin's session itself
    (a role change or an ended session reached through links); schemathesis then asks again,
    and gets a fresh sign-in."""

    def get(self, case, context):
        _tokens["admin"] = _sign_in(SEED["admin_email"], SEED["admin_password"])
        _admin_tokens.add(_tokens["admin"])
        return _tokens["admin"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth().apply_to(path_regex=AGENT_ROUTES)
class AgentKey:
    """The agent routes take the agent's own key, never a user's token."""

    def get(self, case, context):
        return SEED["agent_key"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _good_self_case(case, kind, user):
    """The request that succeeds for the throwaway user this case runs as."""
    if kind == "password":
        case.body = {"current_password": SEED["self_password"],
                     "new_password": SEED["self_password"]}
    elif kind == "sessions":
        case.path_parameters = {**(case.path_parameters or {}), "id": user["other_session_id"]}
    elif kind == "confirm":
        case.body = {"code": _totp(user["secret"])}
    elif kind == "disable":
        case.body = {"code": user["recovery_code"]}


def _totp(secret_base32):
    import base64, hashlib, hmac, struct, time
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
    o = digest[-1] & 0xF
    return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def _genuine(case, method):
    """Whether this request is the documented call with the run's own credentials, not one of
    schemathesis's probes (another method, no or altered credentials): only those get the
    known-good values, so a probe never uses up a resource made for one use."""
    if str(case.method).upper() != method:
        return False
    auth = (case.headers or {}).get("Authorization")
    token = (auth or "").removeprefix("Bearer ")
    return token in _admin_tokens or token == SEED["agent_key"]


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.operation.method.upper(), case.operation.path
    kind = _self_kind(case)
    if kind:
        # A throwaway user gets the request that works for it; once the pool is spent the
        # generated requests go with a dead token.
        token = (case.headers or {}).get("Authorization", "").removeprefix("Bearer ")
        user = _self_by_token.get(token)
        if user and user["kind"] == kind:
            _good_self_case(case, kind, user)
        return
    # Operations that use up a record (approving, rejecting, deleting, ...) always get a spare
    # while the pool lasts: a few generated cases at 40% could miss every spare, and then the
    # operation is never accepted. Everything else gets known-good values in a share of cases.
    one_use = method == "DELETE" or path in (
        "/api/jobs/{id}/cancel",
        "/api/agents/{id}/approve", "/api/agents/{id}/reject",
        "/api/agents/{id}/update", "/api/agents/{id}/update/retry",
        "/api/alerts/{id}/acknowledge", "/api/alerts/{id}/resolve")
    if not _genuine(case, method) or (not one_use and random.random() >= 0.4):
        return
    if "{id}" in path:
        good = _good_path_id(method, path)
        if good is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": good}
    if path == "/api/rollouts/{os}/{arch}":
        case.path_parameters = {**(case.path_parameters or {}), "os": "linux", "arch": "x86_64"}
    if method in ("POST", "PUT"):
        body = _good_body(method, path)
        if body is not None:
            case.body = body
