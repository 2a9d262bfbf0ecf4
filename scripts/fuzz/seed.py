"""Makes the resources scripts/fuzz-api.sh's hooks hand to the fuzzer (see hooks.py) and writes
their ids as JSON: a client, sites, an agent with its key, queued commands, and spares of each
kind for the operations that delete or cancel.

    python3 seed.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_FILE
"""

import json
import sys
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


def pending(n):
    """A record awaiting approval: a second enrollment claiming an enrolled device's id."""
    device = {"site_code": site["site_code"], "device_id": f"fuzz-claimed-{n}",
              "hostname": f"fuzz-claimed-{n}",
              "os_info": {"os_type": "linux", "os_version": "6", "arch": "x86_64"},
              "version": "0.1.0"}
    call("POST", "/api/agent/register-legacy", device)
    return call("POST", "/api/agent/register-legacy", device)["agent_id"]


# Two-factor routes run as a user of their own, so turning it on never locks the admin out.
call("POST", "/api/users", {"email": "fuzz-2fa@example.com", "password": "fuzz-2fa-pass-123",
                            "role": "viewer"}, token)
two_factor_token = call("POST", "/api/auth/login",
                        {"email": "fuzz-2fa@example.com", "password": "fuzz-2fa-pass-123"})["token"]

seed = {
    "base_url": base,
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
    "two_factor_token": two_factor_token,
    "spare": {
        "clients": [post("/api/clients", {"name": f"spare {n}"})["id"] for n in range(6)],
        "sites": [post("/api/sites", {"client_id": client["id"], "name": f"spare {n}"})["id"]
                  for n in range(6)],
        "agents": [post("/api/agents", {"hostname": f"spare-{n}"})["agent"]["id"]
                   for n in range(6)],
        "commands": [command(100 + n) for n in range(6)],
        "pending": [pending(n) for n in range(6)],
        "pending_reject": [pending(100 + n) for n in range(6)],
        "users": [post("/api/users", {"email": f"spare-{n}@example.com",
                                      "password": "spare-password-1", "role": "viewer"})["id"]
                  for n in range(6)],
    },
}
json.dump(seed, open(out, "w"), indent=1)
print(f"seeded: client, 2 sites, agent {agent_id}, 5 commands, spares of each kind")
