"""GET /api/docs: Swagger UI served from the swagger-ui-bundle package, no CDN.

The page is a small HTML file of our own (Swagger UI's own index has no inline
script either, but its initializer points at the petstore) that loads the
package's swagger-ui-bundle.js and css and static/swagger-initializer.js, all
from /api/docs/..., so the docs page's Content-Security-Policy
(blueprints/access/headers.py DOCS_CSP) allows 'self' only. Neither the page nor
its assets are API operations (no OpenAPI entry); they are public and not
counted against the anonymous rate limit (blueprints/access/limits.py).
"""
import os

from flask import Blueprint, abort, send_from_directory, url_for
from markupsafe import escape
from swagger_ui_bundle import swagger_ui_path

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# file name -> folder; nothing else of the package (its index.html, source maps) is served
ASSETS = {"swagger-ui.css": swagger_ui_path, "swagger-ui-bundle.js": swagger_ui_path,
          "favicon-32x32.png": swagger_ui_path, "favicon-16x16.png": swagger_ui_path,
          "swagger-initializer.js": STATIC}
ASSET_MAX_AGE = 3600

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Call Center API docs</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" href="{icon}" sizes="32x32">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec}"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""

blp = Blueprint("docs", __name__, url_prefix="/api/docs")


def _asset_url(name):
    return escape(url_for("docs.asset", filename=name))


@blp.get("", strict_slashes=False)
def page():
    """The interactive docs of /api/openapi.json."""
    html = PAGE.format(css=_asset_url("swagger-ui.css"), icon=_asset_url("favicon-32x32.png"),
                       spec=escape(url_for("api-docs.openapi_json")),
                       bundle=_asset_url("swagger-ui-bundle.js"),
                       init=_asset_url("swagger-initializer.js"))
    return html, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}


@blp.get("/<filename>")
def asset(filename):
    """One file of Swagger UI (from the package) or its initializer."""
    folder = ASSETS.get(filename)
    if folder is None:
        abort(404)
    return send_from_directory(folder, filename, max_age=ASSET_MAX_AGE)
