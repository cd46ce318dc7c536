"""OpenAPI: the contract's conventions applied to every operation in one place.

- who may call what: security schemes, the required role (x-required-role);
- a stable camelCase operationId from operation_ids.OPERATIONS;
- every status a route can answer, each error with the one error body (`Error`, with its
  `error_id`): 400, 401, 403, 413, 415, 422, 429, 503 wherever they apply, 404 on routes
  with ids in the path, 409 on writes, 502 on routes that command FreeSWITCH;
- the few facts one route's decorators cannot state (an idempotent retry's 200, the
  Idempotency-Key header, the recording as application/octet-stream, an optional body).
"""
import copy
import http

from apispec import BasePlugin

from blueprints.access.limits import UNLIMITED_ENDPOINTS
from blueprints.access.operation_ids import FREESWITCH_COMMANDS, OPERATIONS
from blueprints.access.policy import PUBLIC, is_listed, required_role
from blueprints.pagination import LINK_DESCRIPTION

ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
WRITE_METHODS = ("post", "put", "patch", "delete")
BODY_METHODS = ("post", "put", "patch")

# Shared error responses (components/responses), each with the one error body.
ERROR_RESPONSES = {
    "BAD_REQUEST": "Malformed request: invalid JSON (invalid_json) or a NUL character "
                   "(nul_character)",
    "NOT_FOUND": "No such resource (e.g. call_not_found), or not yours to see",
    "CONFLICT": "Conflicts with the resource's state or with stored data (conflict, ...)",
    "PAYLOAD_TOO_LARGE": "The body is larger than MAX_CONTENT_LENGTH (payload_too_large)",
    "UNSUPPORTED_MEDIA_TYPE": "The body is not sent as application/json "
                              "(unsupported_media_type)",
    "BAD_GATEWAY": "FreeSWITCH refused the command (bad_gateway or a more precise id)",
    "SERVICE_UNAVAILABLE": "A backing service (database, Redis, FreeSWITCH) is unreachable; "
                           "retry after Retry-After seconds",
}
UNKNOWN_QUERY = ("Invalid input: a field error (validation_failed, ...) or a query "
                 "parameter the operation does not define (unknown_query_parameter)")

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Makes retries safe: a second request with the same key answers 200 with "
                   "the call the first one started (for the same agent) instead of a new call"}
OCTET_STREAM = "application/octet-stream"


def _error(description, retry_after=False):
    response = {"description": description, "content": copy.deepcopy(ERROR_CONTENT)}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait",
                                               "schema": {"type": "integer"}}}
    return response


def _document_security(operation, endpoint, method):
    role = required_role(endpoint, method.upper())
    if role == PUBLIC:
        operation["security"] = []
        if endpoint not in UNLIMITED_ENDPOINTS:
            operation["responses"].setdefault(429, "TOO_MANY_REQUESTS")
        return
    operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    operation["x-required-role"] = role
    if not is_listed(endpoint, method):
        operation["x-policy"] = "unlisted: admin by default"
    for code, name in ((401, "UNAUTHORIZED"), (403, "FORBIDDEN"), (429, "TOO_MANY_REQUESTS")):
        operation["responses"].setdefault(code, name)


def _document_errors(operation, path, endpoint, method):
    """Declare every error status the route can answer, each with the error body."""
    responses = operation["responses"]
    wanted = [(400, "BAD_REQUEST"), (422, "UNPROCESSABLE_ENTITY"),
              (503, "SERVICE_UNAVAILABLE")]
    if "{" in path:
        wanted.append((404, "NOT_FOUND"))
    if method in WRITE_METHODS:
        wanted.append((409, "CONFLICT"))
    if method in BODY_METHODS:
        wanted.append((413, "PAYLOAD_TOO_LARGE"))
        if "requestBody" in operation:
            wanted.append((415, "UNSUPPORTED_MEDIA_TYPE"))
    if (endpoint, method.upper()) in FREESWITCH_COMMANDS:
        wanted.append((502, "BAD_GATEWAY"))
    for code, name in wanted:
        if code not in responses and str(code) not in responses:
            responses[code] = name
    for code, response in list(responses.items()):
        status = str(code)
        if not isinstance(response, dict) or "$ref" in response:
            continue
        if status.isdigit():
            response.setdefault("description", http.HTTPStatus(int(status)).phrase)
        if status.isdigit() and int(status) >= 400 and "content" not in response:
            response["content"] = copy.deepcopy(ERROR_CONTENT)
            if int(status) == 503:
                response.update(_error(response["description"], retry_after=True))


def _document_route_facts(operation, endpoint, method):
    """What one route's decorators cannot state."""
    key = (endpoint, method.upper())
    responses = operation["responses"]
    if key == ("calls.CallStart", "POST"):
        created = responses.get(201) or responses.get("201")
        responses[200] = {**created, "description": "An idempotent retry: the call that the "
                                                    "first request with this key started"}
        operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
    elif key == ("recordings.RecordingAudio", "GET"):
        # Generic binary first: client generators read it as bytes (audio/* they do not know).
        for status in ("200", "206"):
            response = responses.get(status) or responses.get(int(status))
            if response and "content" in response:
                response["content"] = {OCTET_STREAM: {"schema": {"type": "string",
                                                                 "format": "binary"}},
                                       **response["content"]}
    elif key == ("recordings.RecordingStart", "POST") and "requestBody" in operation:
        operation["requestBody"]["required"] = False
    elif key == ("calls.CallHistory", "GET"):
        ok = responses.get(200) or responses.get("200")
        ok.setdefault("headers", {})["Link"] = {"description": LINK_DESCRIPTION,
                                                "schema": {"type": "string"}}


class PolicyDocPlugin(BasePlugin):
    """Applies the contract's conventions (see the module docstring) to each operation."""

    def init_spec(self, spec):
        spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer",
                           "description": "An API key, or a token from POST /api/auth/token"})
        spec.components.security_scheme(
            "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
        for name, description in ERROR_RESPONSES.items():
            spec.components.response(
                name, _error(description, retry_after=name == "SERVICE_UNAVAILABLE"),
                lazy=True)

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method.startswith("x-") or rule is None:
                continue
            operation_id = OPERATIONS.get((rule.endpoint, method.upper()))
            if operation_id:
                operation["operationId"] = operation_id
            operation.setdefault("responses", {})
            _document_security(operation, rule.endpoint, method)
            _document_route_facts(operation, rule.endpoint, method)
            _document_errors(operation, path or "", rule.endpoint, method)


def install_policy_doc(api):
    plugin = PolicyDocPlugin()
    api.spec.plugins.append(plugin)
    plugin.init_spec(api.spec)
