"""Response headers: security headers on every answer, CORS for FRONTEND_URL, proxy trust."""
from flask import g, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The docs page (blueprints/docs): Swagger UI's files and its initializer come from
# this origin, no inline script; its SVG icons are data: URIs.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
DOCS_ENDPOINT = "docs.page"
CORS_ALLOW_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key",
                      "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["X-Request-ID", "X-Pagination", "Retry-After", "X-RateLimit-Limit",
                       "X-RateLimit-Remaining", "X-RateLimit-Reset", "Content-Disposition"]


def security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    # A view may set its own policy on g (the browser pages: blueprints/pages).
    headers["Content-Security-Policy"] = g.get("content_security_policy") or (
        DOCS_CSP if request.endpoint == DOCS_ENDPOINT else API_CSP)
    if request.endpoint != DOCS_ENDPOINT and response.mimetype == "application/json":
        headers.setdefault("Cache-Control", "no-store")
    if request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if "request_id" in g:
        headers["X-Request-ID"] = g.request_id
    return response


def frontend_origins(app):
    return [o.strip().rstrip("/") for o in str(app.config.get("FRONTEND_URL", "")).split(",")
            if o.strip()]


def install_cors(app):
    CORS(app, origins=frontend_origins(app), supports_credentials=False, max_age=600,
         allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS)


def trust_proxies(app):
    hops = int(app.config.get("PROXY_FIX_HOPS", 0) or 0)
    if hops:
        # Behind N trusted proxies (Heroku's router: 1) the client's address and
        # scheme come from X-Forwarded-For/-Proto; trusting them without a proxy
        # would let anyone pick the IP that the anonymous rate limit counts.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
