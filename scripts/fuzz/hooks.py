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


def _good_path_id(method, path):
    if path.startswith("/api/clients/"):
        return _spare("clients") if method == "DELETE" else SEED["client_id"]
    if path == "/api/sites/{id}/regenerate-key":
        return SEED["rekey_site_id"]
    if path.startswith("/api/sites/"):
        return _spare("sites") if method == "DELETE" else SEED["site_id"]
    if path.startswith("/api/agents/"):
        return _spare("agents") if method == "DELETE" else SEED["agent_id"]
    if path == "/api/commands/{id}/cancel":
        return _spare("commands")
    if path.startswith("/api/commands/"):
        return SEED["command_ids"][0]
    if path.startswith("/api/users/"):
        return _spare("users")
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
    if path == "/api/agent/heartbeat":
        return {}
    if path == "/api/agent/command-result":
        return {"id": random.choice(SEED["command_ids"]), "exit_code": 0,
                "stdout": "fuzz", "stderr": "", "duration_ms": 5}
    return None


AGENT_ROUTES = r"^/api/agent/(heartbeat|command-result)$"


@schemathesis.auth().skip_for(path_regex=AGENT_ROUTES)
class AdminToken:
    """Every user route is called as the admin."""

    def get(self, case, context):
        return SEED["admin_token"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth().apply_to(path_regex=AGENT_ROUTES)
class AgentKey:
    """The agent routes take the agent's own key, never a user's token."""

    def get(self, case, context):
        return SEED["agent_key"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.operation.method.upper(), case.operation.path
    if random.random() >= 0.4:
        return
    if "{id}" in path:
        good = _good_path_id(method, path)
        if good is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": good}
    if method in ("POST", "PUT"):
        body = _good_body(method, path)
        if body is not None:
            case.body = body
