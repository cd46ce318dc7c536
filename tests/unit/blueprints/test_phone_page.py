"""The browser phone's files: served from web/phone, its SIP.js is the pinned version, and
the pages may open a WebSocket to PHONE_WS_URL (and nowhere else)."""
import json
import os
import re

import pytest

from blueprints.pages.routes import PAGE_CSP, WEB_ROOT
from tests.unit.blueprints.test_errors import make_app


@pytest.fixture(scope="module")
def client(bound_db, db_url, redis_server):
    return make_app(db_url, redis_server,
                    PHONE_WS_URL="wss://pbx.example.com:7443").test_client()


def test_the_pages_may_reach_the_phone_websocket_and_nothing_else(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://pbx.example.com:7443;" in policy
    assert policy == PAGE_CSP.replace("connect-src 'self'",
                                      "connect-src 'self' wss://pbx.example.com:7443")


def test_without_a_phone_url_the_policy_is_unchanged(bound_db, db_url, redis_server):
    plain = make_app(db_url, redis_server).test_client()
    assert plain.get("/").headers["Content-Security-Policy"] == PAGE_CSP


def test_the_phone_module_its_styles_and_sip_js_are_served(client):
    for path, kind in (("/assets/phone/phone.js", "javascript"),
                       ("/assets/phone/phone.css", "css"),
                       ("/assets/vendor/sip.min.js", "javascript")):
        resp = client.get(path)
        assert resp.status_code == 200 and kind in resp.content_type, path
    source = client.get("/assets/phone/phone.js").get_data(as_text=True)
    assert re.search(r'from "\.\./vendor/sip\.min\.js";', source)
    console = client.get("/assets/js/console.js").get_data(as_text=True)
    assert 'from "../phone/phone.js"' in console


def test_the_vendored_sip_js_is_the_pinned_version():
    with open(os.path.join(WEB_ROOT, "package-lock.json"), encoding="utf-8") as fh:
        lock = json.load(fh)["packages"]
    version = lock["node_modules/sip.js"]["version"]
    assert version == "0.21.2"
    # SIP.js 0.21.2 still says "0.21.1" in its LIBRARY_VERSION (upstream); the bundle is
    # what `make web-assets` builds from node_modules/sip.js 0.21.2.
    with open(os.path.join(WEB_ROOT, "vendor", "sip.min.js"), encoding="utf-8") as fh:
        assert '"0.21.1"' in fh.read()
