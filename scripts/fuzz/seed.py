"""Makes the resources scripts/fuzz-api.sh's hooks hand to the fuzzer (see hooks.py) and writes
their ids as JSON: a client, sites, an agent with its key, queued commands, and spares of each
kind for the operations that delete or cancel.

    python3 seed.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_FILE
"""

import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.request

base, email, password, out = sys.argv[1:5]


def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


token = call("POST", "/api/auth/login", {"email": email, "password": password})["token"]


def totp(secret_base32, offset_steps=0):
    """The RFC 6238 code an authenticator app shows (SHA-1, 6 digits, 30 s)."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int(time.time() // 30) + offset_steps
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = digest[-1] & 0xF
    return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def post(path, body):
    return call("POST", path, body, token)


client = post("/api/clients", {"name": "fuzz client"})
site = post("/api/sites", {"client_id": client["id"], "name": "fuzz site"})
rekey = post("/api/sites", {"client_id": client["id"], "name": "fuzz rekey site"})
agent = post("/api/agents", {"hostname": "fuzz-agent", "site_id": site["id"]})
agent_id = agent["agent"]["id"]


def command(n):
    return post(f"/api/agents/{agent_id}/command",
                {"command_type": "shell", "command": f"echo seed {n}"})["id"]


SELF_PASSWORD = "self-password-1"


def self_user(n, kind):
    """A viewer of its own, signed in: the routes that end or change the caller's own session
    or second factor use these, never the admin's session the rest of the run depends on."""
    who = post("/api/users", {"email": f"self-{kind}-{n}@example.com",
                               "password": SELF_PASSWORD, "role": "viewer"})
    login = call("POST", "/api/auth/login", {"email": who["email"], "password": SELF_PASSWORD})
    return {"email": who["email"], "token": login["token"]}


def with_pending_setup(n, kind="pending"):
    user = self_user(n, kind)
    user["secret"] = call("POST", "/api/auth/two-factor/setup", None, user["token"])["secret"]
    return user


def with_two_factor(n):
    user = with_pending_setup(n, "two-factor")
    codes = call("POST", "/api/auth/two-factor/confirm", {"code": totp(user["secret"])},
                 user["token"])
    user["recovery_code"] = codes["recovery_codes"][0]
    return user


def with_second_session(n):
    user = self_user(n, "sessions")
    other = call("POST", "/api/auth/login", {"email": user["email"], "password": SELF_PASSWORD})
    sessions = call("GET", "/api/auth/sessions", None, other["token"])
    user["other_session_id"] = next(s["id"] for s in sessions if s["current"])
    return user


def pending_agent(n):
    body = {"site_code": site["site_code"], "device_id": f"fuzz-dup-{n}", "hostname": f"dup-{n}",
            "os_info": {"os_type": "linux", "os_version": "12", "arch": "x86_64"},
            "version": "0.1.0"}
    call("POST", "/api/agent/register-legacy", body)
    return call("POST", "/api/agent/register-legacy", body)["agent_id"]


# Updates: fuzz-api.sh published build 0.5.0 for linux x86_64 before the server started.
UPDATE_VERSION = "0.5.0"


def legacy_agent(n):
    """A polling agent that said its os and arch (an update needs both): (id, key)."""
    body = {"site_code": site["site_code"], "device_id": f"fuzz-upd-{n}", "hostname": f"upd-{n}",
            "os_info": {"os_type": "linux", "os_version": "12", "arch": "x86_64"},
            "version": "0.1.0"}
    reg = call("POST", "/api/agent/register-legacy", body)
    return reg["agent_id"], reg["api_key"]


def failed_update_agent(n):
    """An agent whose last update failed (as it reported), so a retry is accepted."""
    agent_id, key = legacy_agent(n)
    row = post(f"/api/agents/{agent_id}/update", {"version": UPDATE_VERSION})
    call("POST", "/api/agent/heartbeat",
         {"version": "0.1.0", "update_status": [{"update_id": row["id"], "version": UPDATE_VERSION,
                                                 "state": "failed", "reason": "seeded"}]}, key)
    return agent_id


def rule(name, kind="cpu", **extra):
    body = {"name": name, "kind": kind, "severity": "warning", "scope": {"kind": "fleet"}}
    if kind == "cpu":
        body.update(threshold=90, duration_seconds=60)
    body.update(extra)
    return post("/api/alert-rules", body)["id"]


def window(n):
    return post("/api/maintenance-windows",
                {"name": f"fuzz window {n}", "scope": {"kind": "site", "id": site["id"]},
                 "weekly": {"weekdays": [6], "start": "22:00", "duration_minutes": 60},
                 "time_zone": "Europe/Berlin"})["id"]


def seeded_alerts(count):
    """Open alerts to acknowledge and resolve: one command failure of the fuzz agent opens one
    alert for each of `count` command_failed rules scoped to it."""
    for n in range(count):
        rule(f"seed failures {n}", "command_failed", scope={"kind": "agent", "id": agent_id})
    failing = command(200)
    call("POST", "/api/agent/command-result",
         {"id": failing, "exit_code": 1, "stdout": "", "stderr": "seeded", "duration_ms": 1},
         agent["api_key"])
    for _ in range(100):
        open_alerts = call("GET", f"/api/alerts?status=open&agent_id={agent_id}", None, token)
        if len(open_alerts) >= count:
            return [a["id"] for a in open_alerts]
        time.sleep(0.1)
    raise SystemExit("seeded alerts did not open")


alert_ids = seeded_alerts(13)

policy = post("/api/policies", {"name": "fuzz policy", "settings": {"metrics_interval_seconds": 60}})


def assignment(n):
    """A policy assignment to its own agent, to be deleted."""
    target = post("/api/agents", {"hostname": f"fuzz-assigned-{n}"})["agent"]["id"]
    return post("/api/policy-assignments",
                {"policy_id": policy["id"], "scope": {"kind": "agent", "id": target}})["id"]


# Notifications: webhook channels on a loopback port nothing listens on (fuzz-api.sh also sends
# the server's outbound HTTP to a dead proxy, so no channel the fuzzer makes reaches outside).
HOOK_URL = "http://127.0.0.1:9/fuzz-hook"


def notification_channel(name):
    return post("/api/notification-channels", {"name": name, "kind": "webhook", "url": HOOK_URL,
                                                "secret": "fuzz-signing-secret-123"})["id"]


def notification_route(channel_id):
    return post("/api/notification-routes", {"channel_id": channel_id, "min_severity": "warning",
                                              "scope": {"kind": "fleet"}})["id"]


channel_id = notification_channel("fuzz channel")
route_id = notification_route(channel_id)
delivery_id = post(f"/api/notification-channels/{channel_id}/test", {})["id"]

def script(name):
    return post("/api/scripts", {"name": name, "command_type": "shell", "body": "echo \"$WHO\"",
                                 "parameters": [{"name": "WHO", "kind": "string", "default": "x"}]})["id"]


def job(n):
    return post("/api/jobs", {"command": f"echo job {n}", "target": {"agent_ids": [agent_id]}})["id"]


def failed_job():
    """A job whose one agent failed: re-runs of it are accepted."""
    job_id = job(0)
    command_id = call("GET", f"/api/jobs/{job_id}/agents", None, token)[0]["command_id"]
    call("POST", "/api/agent/command-result",
         {"id": command_id, "exit_code": 1, "stdout": "", "stderr": "seeded", "duration_ms": 1},
         agent["api_key"])
    return job_id


def schedule(n):
    return post("/api/schedules", {"name": f"fuzz schedule {n}", "cron": "0 2 * * *",
                                   "job": {"command": "uptime", "target": {"agent_ids": [agent_id]}}})["id"]


seed = {
    "base_url": base,
    "schedule_id": schedule(0),
    "job_id": failed_job(),
    "script_id": script("fuzz script"),
    "script_export": call("GET", "/api/scripts/export", None, token),
    "policy_id": policy["id"],
    "channel_id": channel_id,
    "route_id": route_id,
    "delivery_id": delivery_id,
    "rule_id": rule("fuzz cpu"),
    "window_id": window(0),
    "alert_id": alert_ids[0],
    "admin_email": email,
    "admin_password": password,
    "admin_token": token,
    "client_id": client["id"],
    "site_id": site["id"],
    "site_code": site["site_code"],
    "rekey_site_id": rekey["id"],
    "agent_id": agent_id,
    "agent_key": agent["api_key"],
    "command_ids": [command(n) for n in range(5)],
    "update_version": UPDATE_VERSION,
    "self_password": SELF_PASSWORD,
    # One user each per use: a use ends the session or changes the second factor.
    "self": {
        "logout": [self_user(n, "logout") for n in range(8)],
        "password": [self_user(n, "password") for n in range(8)],
        "sessions": [with_second_session(n) for n in range(8)],
        "confirm": [with_pending_setup(n) for n in range(4)],
        "disable": [with_two_factor(n) for n in range(4)],
    },
    "spare": {
        "clients": [post("/api/clients", {"name": f"spare {n}"})["id"] for n in range(6)],
        "sites": [post("/api/sites", {"client_id": client["id"], "name": f"spare {n}"})["id"]
                  for n in range(6)],
        "agents": [post("/api/agents", {"hostname": f"spare-{n}"})["agent"]["id"]
                   for n in range(6)],
        "commands": [command(100 + n) for n in range(6)],
        # Records waiting for approval: a known device enrolling again by site code.
        "to_approve": [pending_agent(n) for n in range(12)],
        "to_reject": [pending_agent(n) for n in range(12, 24)],
        # An update to request (once each: then one is under way) and a failed one to retry.
        "to_update": [legacy_agent(n)[0] for n in range(4)],
        "to_retry": [failed_update_agent(n) for n in range(4, 8)],
        "policies": [post("/api/policies", {"name": f"spare policy {n}"})["id"]
                     for n in range(6)],
        "assignments": [assignment(n) for n in range(6)],
        # Agents with no policy of their own, to assign one to (once each).
        "to_assign": [post("/api/agents", {"hostname": f"fuzz-unassigned-{n}"})["agent"]["id"]
                      for n in range(12)],
        "channels": [notification_channel(f"spare {n}") for n in range(6)],
        "routes": [notification_route(channel_id) for n in range(6)],
        "rules": [rule(f"spare rule {n}") for n in range(6)],
        "windows": [window(n) for n in range(1, 7)],
        "scripts": [script(f"spare script {n}") for n in range(6)],
        "jobs": [job(n) for n in range(1, 7)],
        "schedules": [schedule(n) for n in range(1, 7)],
        "to_acknowledge": alert_ids[1:7],
        "to_resolve": alert_ids[7:13],
        "users": [post("/api/users", {"email": f"spare-{n}@example.com",
                                      "password": "spare-password-1", "role": "viewer"})["id"]
                  for n in range(6)],
    },
}
json.dump(seed, open(out, "w"), indent=1)
print(f"seeded: client, 2 sites, agent {agent_id}, 5 commands, spares of each kind")
