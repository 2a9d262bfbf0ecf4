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
import urllib.error
import urllib.request

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
    if path == "/api/agents/{id}/approve":
        return _spare("pending")
    if path == "/api/agents/{id}/reject":
        return _spare("pending_reject")
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
    if path == "/api/auth/password":
        return {"current_password": SEED["admin_password"], "new_password": SEED["admin_password"]}
    if path == "/api/auth/two-factor/confirm":
        return _two_factor_confirm_body()
    if path == "/api/auth/two-factor/disable":
        if not _two_factor["recovery"]:
            _turn_two_factor_on()
        return {"code": _two_factor["recovery"].pop()} if _two_factor["recovery"] else None
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
TWO_FACTOR_ROUTES = r"^/api/auth/two-factor"
# Two-factor sign-in state of the seeded two-factor user: the secret being confirmed and the
# recovery codes once on (disable takes one).
_two_factor = {"secret": None, "recovery": []}


def _totp(base32):
    """The current RFC 6238 code (SHA-1, 6 digits, 30 s)."""
    import base64, hashlib, hmac, struct, time
    key = base64.b32decode(base32 + "=" * (-len(base32) % 8))
    h = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    o = h[-1] & 0xF
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def _turn_two_factor_on():
    """Sets up and confirms two-factor sign-in for the two-factor user (so that disabling it
    can be accepted), keeping its recovery codes."""
    body = _two_factor_confirm_body()
    if body is None:
        return
    req = urllib.request.Request(f"{SEED['base_url']}/api/auth/two-factor/confirm", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"authorization": f"Bearer {SEED['two_factor_token']}",
                                          "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            _two_factor["recovery"] = list(json.load(resp)["recovery_codes"])
    except urllib.error.HTTPError:
        pass


def _two_factor_confirm_body():
    """A fresh pending secret (set up now) and its current code; None when already on."""
    req = urllib.request.Request(f"{SEED['base_url']}/api/auth/two-factor/setup", method="POST",
                                 headers={"authorization": f"Bearer {SEED['two_factor_token']}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            _two_factor["secret"] = json.load(resp)["secret"]
    except urllib.error.HTTPError:
        return None
    return {"code": _totp(_two_factor["secret"])}


_admin = {"token": SEED["admin_token"]}


def _sign_in_again():
    """Signing out, a password change and the like end the admin's session (sessions end on
    the server): sign in again so the rest of the run is not all 401s."""
    req = urllib.request.Request(
        f"{SEED['base_url']}/api/auth/login",
        data=json.dumps({"email": SEED["admin_email"], "password": SEED["admin_password"]}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        _admin["token"] = json.load(resp)["token"]


@schemathesis.auth(refresh_interval=None).skip_for(path_regex=f"{AGENT_ROUTES}|{TWO_FACTOR_ROUTES}")
class AdminToken:
    """Every user route is called as the admin."""

    def get(self, case, context):
        return _admin["token"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth().apply_to(path_regex=TWO_FACTOR_ROUTES)
class TwoFactorUser:
    """The two-factor routes run as the seeded two-factor user."""

    def get(self, case, context):
        return SEED["two_factor_token"]

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


@schemathesis.hook
def after_call(context, case, response):
    path = case.operation.path
    try:
        body = response.json() if response.status_code == 200 else {}
    except ValueError:  # the coverage phase also sends other methods: no JSON then
        body = {}
    if path == "/api/auth/password" and "token" in body:
        _admin["token"] = body["token"]
    if path == "/api/auth/two-factor/confirm" and "recovery_codes" in body:
        _two_factor["recovery"] = list(body["recovery_codes"])
    if path == "/api/auth/two-factor/disable" and response.status_code == 200:
        _two_factor["recovery"] = []
    sent = (case.headers or {}).get("Authorization", "")
    if response.status_code == 401 and sent == f"Bearer {_admin['token']}":
        _sign_in_again()
