"""The browser pages as files (in process, real SQLite and Redis): a strict CSP, no inline
script, nothing from another host, every asset they name is served, nothing outside
web/'s asset folders is, the vendored libraries are the versions web/package-lock.json
pins, and page loads are not counted against the anonymous rate limit."""
import json
import os
import re

import pytest

from blueprints.pages.routes import PAGE_CSP, WEB_ROOT
from tests.unit.blueprints.test_errors import make_app

PAGES = {"/": "index.html", "/wallboard": "wallboard.html"}
ASSET_REF = re.compile(r'(?:src|href)="(/assets/[^"]+)"')
IMPORT = re.compile(r'^import .* from "([^"]+)";', re.M)


@pytest.fixture(scope="module")
def client(bound_db, db_url, redis_server):
    return make_app(db_url, redis_server, RATELIMIT_ENABLED=True,
                    RATELIMIT_ANONYMOUS="3 per minute").test_client()


def module_imports(path):
    """The /assets URLs the ES module at path imports (relative imports resolved)."""
    with open(os.path.join(WEB_ROOT, path.removeprefix("/assets/")), encoding="utf-8") as fh:
        source = fh.read()
    folder = os.path.dirname(path)
    return [spec if spec.startswith("/") else os.path.normpath(os.path.join(folder, spec))
            for spec in IMPORT.findall(source)]


@pytest.mark.parametrize("url", list(PAGES))
def test_a_page_is_html_with_a_strict_policy_and_no_inline_script(client, url):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert "script-src 'self';" in PAGE_CSP and "unsafe" not in PAGE_CSP
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="/assets/' in tag for tag in scripts)
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no inline code
    assert not re.search(r"\son[a-z]+=|\sstyle=", html)  # no inline handlers or styles
    assert "http://" not in html and "https://" not in html


def test_every_asset_a_page_names_is_served(client):
    seen, todo = set(), []
    for url in PAGES:
        todo += ASSET_REF.findall(client.get(url).get_data(as_text=True))
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        if path.endswith(".js"):
            assert response.mimetype == "text/javascript", path
            todo += module_imports(path)
    assert "/assets/vendor/uPlot.esm.js" in seen and "/assets/js/live.js" in seen


@pytest.mark.parametrize("url", ["/assets/package.json", "/assets/node_modules/uplot/LICENSE",
                                 "/assets/js/../../app.py", "/assets/../config.py",
                                 "/assets/js/", "/assets/vendor/nope.js"])
def test_nothing_outside_the_asset_folders_is_served(client, url):
    assert client.get(url).status_code == 404


def test_the_vendored_libraries_are_the_pinned_versions():
    with open(os.path.join(WEB_ROOT, "package-lock.json"), encoding="utf-8") as fh:
        lock = json.load(fh)["packages"]
    with open(os.path.join(WEB_ROOT, "vendor", "uPlot.esm.js"), encoding="utf-8") as fh:
        assert f"(v{lock['node_modules/uplot']['version']})" in fh.read(2000)
    with open(os.path.join(WEB_ROOT, "vendor", "axe.min.js"), encoding="utf-8") as fh:
        assert f"axe v{lock['node_modules/axe-core']['version']}" in fh.read(500)


def test_page_loads_do_not_use_up_the_anonymous_rate_limit(client, redis_client):
    # redis_client starts from an empty Redis: no counts left from another run.
    for _ in range(10):
        assert client.get("/wallboard").status_code == 200
        assert client.get("/assets/js/wallboard.js").status_code == 200
    statuses = [client.get("/api/calls/history").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429
