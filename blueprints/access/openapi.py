"""OpenAPI: document who may call what (security schemes, required role, 401/403/429)."""
from apispec import BasePlugin

from blueprints.access.policy import PUBLIC, is_listed, required_role


class PolicyDocPlugin(BasePlugin):
    """Adds security requirements, the required role and 401/403/429 to each operation."""

    def init_spec(self, spec):
        spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer",
                           "description": "An API key, or a token from POST /api/auth/token"})
        spec.components.security_scheme(
            "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method.startswith("x-") or rule is None:
                continue
            role = required_role(rule.endpoint, method.upper())
            if role == PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
            operation["x-required-role"] = role
            if not is_listed(rule.endpoint, method):
                operation["x-policy"] = "unlisted: admin by default"
            responses = operation.setdefault("responses", {})
            responses.setdefault(401, "UNAUTHORIZED")
            responses.setdefault(403, "FORBIDDEN")
            responses.setdefault(429, "TOO_MANY_REQUESTS")


def install_policy_doc(api):
    plugin = PolicyDocPlugin()
    api.spec.plugins.append(plugin)
    plugin.init_spec(api.spec)
