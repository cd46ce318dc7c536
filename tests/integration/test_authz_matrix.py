"""The authorization matrix: every operation of the running app's OpenAPI spec, called with
no key, a bad key and each role, answers as the policy says.

A route added later without an entry in blueprints/access/policy.py POLICY is
admin-only by default and flagged in the spec ("x-policy"); this test names it
and fails until someone decides who may call it.
"""
import re
import uuid

import pytest

from services.auth import create_key

ROLES = ("agent", "supervisor", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
BODY_METHODS = ("post", "put", "patch")
# Decided here, independently of the implementation: what must never loosen.
ONLY_PUBLIC = {("get", "/api/health")}
ADMIN_ONLY_PATH = re.compile(r"^/api/health/detailed$")
AGENT_NEVER = re.compile(r"^/api/(sip|health/detailed|calls/metrics)")


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def spec(stack):
    resp = stack.get("/api/openapi.json", headers={"Authorization": None})
    assert resp.status_code == 200
    return resp.json()


@pytest.fixture(scope="module")
def role_keys(stack):
    url, tag = stack.env["DATABASE_URL"], uuid.uuid4().hex[:6]
    return {"admin": stack.api_key,
            "supervisor": create_key("supervisor", f"m-sup-{tag}", database_url=url),
            "agent": create_key("agent", f"m-a1-{tag}", "A1", database_url=url)}


def operations(spec):
    for path, item in sorted(spec["paths"].items()):
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def required_role(operation):
    return "public" if operation.get("security") == [] else operation["x-required-role"]


def new_call(stack, agent_id):
    resp = stack.post("/api/calls/start", {"to": "15557770000", "gateway": "gw1",
                                           "agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def fill(path, operation, call_id):
    """A concrete URL: call ids point at a real call, other parameters get plausible values."""
    def value(match):
        name = match.group(1)
        if name == "call_id":
            return call_id
        schema = next((p.get("schema", {}) for p in operation.get("parameters", [])
                       if p.get("name") == name), {})
        return str(uuid.uuid4()) if schema.get("format") == "uuid" else "matrix-test"
    return re.sub(r"\{(\w+)\}", value, path)


def call(stack, method, url, headers):
    kwargs = {"headers": headers}
    if method in BODY_METHODS:
        return getattr(stack, method)(url, {}, **kwargs)
    return getattr(stack, method)(url, **kwargs)


def test_every_operation_is_listed_in_the_policy_table(spec):
    unlisted = [f"{method.upper()} {path}" for path, method, op in operations(spec)
                if "x-policy" in op]
    assert not unlisted, ("routes without a POLICY entry in blueprints/access/policy.py "
                          f"(admin-only until listed): {unlisted}")


def test_the_policy_never_loosens_what_must_stay_tight(spec):
    for path, method, operation in operations(spec):
        role = required_role(operation)
        where = f"{method.upper()} {path}"
        if (method, path) not in ONLY_PUBLIC:
            assert role != "public", f"{where} must require a key"
        if method == "delete" or ADMIN_ONLY_PATH.match(path) or (
                path.startswith("/api/sip") and method != "get"):
            assert role == "admin", f"{where} must be admin-only, is {role}"
        if AGENT_NEVER.match(path):
            assert role != "agent", f"{where} must be closed to agents"


def test_the_matrix_no_key_bad_key_and_each_role(stack, spec, role_keys):
    failures = []
    for path, method, operation in operations(spec):
        required = required_role(operation)
        where = f"{method.upper()} {path}"
        url = fill(path, operation, str(uuid.uuid4()))
        anonymous = call(stack, method, url, {"Authorization": None})
        forged = call(stack, method, url, bearer("cck_" + "B" * 43))
        if required == "public":
            if anonymous.status_code in (401, 403):
                failures.append(f"{where}: public but {anonymous.status_code} without a key")
            continue
        for label, resp in (("no key", anonymous), ("bad key", forged)):
            if resp.status_code != 401 or "Bearer" not in resp.headers.get("WWW-Authenticate", ""):
                failures.append(f"{where}: {label} gave {resp.status_code}, expected 401")
            elif resp.json().get("code") != 401:
                failures.append(f"{where}: {label} 401 is not in the JSON error format")
        for role in ROLES:
            # each role gets its own call (owned by agent A1) so that earlier
            # deletes or hang-ups cannot change what the next role sees
            call_id = new_call(stack, "A1") if "{call_id}" in path else str(uuid.uuid4())
            resp = call(stack, method, fill(path, operation, call_id), bearer(role_keys[role]))
            allowed = RANK[role] >= RANK[required]
            if not allowed and resp.status_code != 403:
                failures.append(f"{where}: {role} gave {resp.status_code}, expected 403")
            elif allowed and resp.status_code in (401, 403):
                failures.append(f"{where}: {role} refused with {resp.status_code}: {resp.text}")
            elif allowed and resp.status_code == 404 and f"call {call_id} not found" in resp.text:
                failures.append(f"{where}: {role} could not reach its own call")
            elif resp.status_code >= 500 and resp.status_code != 503:
                failures.append(f"{where}: {role} got {resp.status_code}: {resp.text[:200]}")
    assert not failures, "\n".join(failures)


def test_agents_meet_404_on_calls_of_other_agents(stack, spec, role_keys):
    """Wherever an agent may touch its own call, another agent's call does not exist for it."""
    checked = 0
    for path, method, operation in operations(spec):
        if "{call_id}" not in path or required_role(operation) != "agent":
            continue
        foreign = new_call(stack, "A2")
        resp = call(stack, method, fill(path, operation, foreign), bearer(role_keys["agent"]))
        assert resp.status_code == 404, f"{method.upper()} {path}: {resp.status_code}"
        assert resp.json()["message"] == f"call {foreign} not found"
        checked += 1
    assert checked >= 4  # get, update, end and events at least
