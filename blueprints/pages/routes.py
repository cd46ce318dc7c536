"""The browser pages and their static assets, served from the top-level web/ folder.

The pages are plain files: the agent console (`/`) and the supervisor wallboard
(`/wallboard`), ES modules under /assets/js, styles under /assets/css and the vendored
libraries (uPlot, axe-core; `make web-assets`) under /assets/vendor. Nothing is loaded
from another host and no script is inline, so the pages get a strict
Content-Security-Policy (PAGE_CSP). They are public: the page itself asks for an API key.
They are not API operations, so they stay out of the OpenAPI document, and they are not
counted against the anonymous rate limit (a page load fetches a dozen files).
"""
import os
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, send_from_directory

from blueprints.access.limits import EXTENSION as LIMITER_EXTENSION

WEB_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "web")
# Only these folders of web/ are served (never package.json, node_modules, ...).
ASSET_FOLDERS = ("css", "js", "vendor", "img", "phone")  # phone: the browser phone (web/phone)
PAGES = {"console": "index.html", "wallboard": "wallboard.html"}
# The pages' policy: scripts, styles, media and connections from this origin only
# (connect-src 'self' covers the same-origin ws:// / wss:// of /ws).
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

blp = Blueprint("pages", __name__)


def page_csp():
    """PAGE_CSP, plus the browser phone's SIP WebSocket (PHONE_WS_URL: another port or host)."""
    ws = urlsplit(current_app.config.get("PHONE_WS_URL") or "")
    if ws.scheme not in ("ws", "wss") or not ws.netloc:
        return PAGE_CSP
    origin = f"{ws.scheme}://{ws.netloc}"
    return PAGE_CSP.replace("connect-src 'self'", f"connect-src 'self' {origin}", 1)


def _send(folder, filename, max_age):
    g.content_security_policy = page_csp()
    response = send_from_directory(folder, filename, max_age=max_age)
    # Pages and modules change with each deploy: revalidate (ETag) rather than guess.
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-cache"
    return response


@blp.get("/")
def console():
    """The agent console: state, dial pad, the current call, disposition, recent calls."""
    return _send(WEB_ROOT, PAGES["console"], 0)


@blp.get("/wallboard")
def wallboard():
    """The supervisor wallboard: live calls, agents, queues, alerts and today's charts."""
    return _send(WEB_ROOT, PAGES["wallboard"], 0)


@blp.get("/assets/<path:filename>")
def asset(filename):
    """A static file of web/css, web/js, web/vendor or web/img."""
    folder, _, rest = filename.partition("/")
    if folder not in ASSET_FOLDERS or not rest:
        abort(404)
    # send_from_directory refuses paths that leave the folder (404).
    max_age = 86400 if folder == "vendor" else 0
    return _send(os.path.join(WEB_ROOT, folder), rest, max_age)


def init_app(app):
    """Register the pages (not an API blueprint: no OpenAPI) and exempt them from rate limits."""
    app.register_blueprint(blp)
    limiter = app.extensions.get(LIMITER_EXTENSION)
    if limiter is not None:
        limiter.exempt(blp)
