"""Browser tests: the pages in headless Debian Chromium driven by Selenium (chromedriver).

Skipped, with the reason, when chromium, chromedriver or selenium is missing (`.ci/run`
installs them). Chromium gets a fresh profile per driver and resolves no host but
127.0.0.1, so a page that tried to load anything from the internet would break here.
Screenshots go to BROWSER_ARTIFACTS (default: a pytest temp folder, printed).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

from tests.conftest import ROOT, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
AXE_JS = os.path.join(ROOT, "web", "vendor", "axe.min.js")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
         "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - requirements-dev.txt pins it
    webdriver = None


def _missing():
    if webdriver is None:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is missing: apt-get install -y {package} (.ci/run installs it)"
    return None


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    folder = os.environ.get("BROWSER_ARTIFACTS") or str(tmp_path_factory.mktemp("browser"))
    os.makedirs(folder, exist_ok=True)
    print(f"\nbrowser test screenshots: {folder}", file=sys.stderr)
    return folder


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    """The pages do not depend on the database engine: SQLite only (the API's own tests
    cover PostgreSQL)."""
    yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "pages.db")


class Browser:
    """One Chromium with a fresh profile, and the few things the tests do with it."""

    def __init__(self, base_url):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        self.profile = tempfile.mkdtemp(prefix="cc-chromium-")
        for flag in FLAGS + (f"--user-data-dir={self.profile}", "--window-size=1400,1000"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base_url = base_url

    def open(self, path):
        self.driver.get(self.base_url + path)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css, timeout=10.0):
        """Click the first enabled match, as a user would: a live update that re-renders
        the element between finding and clicking it means finding it again."""
        def attempt():
            try:
                element = self.find(css)
                if not element.is_enabled():
                    return False
                element.click()
                return True
            except (NoSuchElementException, StaleElementReferenceException):
                return False
        wait_until(attempt, timeout, message=f"{css} clickable")

    def text(self, css):
        """The text of the first match (innerText, read in one script), or None."""
        return self.js("const n = document.querySelector(arguments[0]);"
                       "return n ? n.innerText : null;", css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def visible(self, css):
        found = self.all(css)
        return bool(found) and found[0].is_displayed()

    def wait_text(self, css, predicate, timeout=10.0, message=None):
        return wait_until(lambda: (lambda t: t if t is not None and predicate(t) else None)(
            self.text(css)), timeout, 0.05, message or f"{css} text")

    def sign_in(self, key):
        wait_until(lambda: self.visible("#api-key"), 10, message="the sign-in form")
        self.find("#api-key").send_keys(key)
        self.find("#signin-form button[type=submit]").click()
        wait_until(lambda: self.visible("#app"), 10, message="the signed-in page")

    def axe_serious(self):
        """The serious and critical accessibility violations axe-core finds on the page."""
        with open(AXE_JS, encoding="utf-8") as fh:
            self.js(fh.read())
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));")
        return [v for v in result if v["impact"] in ("serious", "critical")]

    def resources(self):
        return self.js("return performance.getEntriesByType('resource').map(e => e.name)"
                       ".concat([location.href])")

    def screenshot(self, folder, name):
        path = os.path.join(folder, name)
        self.driver.save_screenshot(path)
        return path

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browsers():
    """browsers(stack) -> a new Browser on the stack; all quit at the module's end."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    made = []

    def make(stack):
        browser = Browser(stack.base_url)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.quit()


def new_key(stack, role, agent_id=None, name=None):
    from services.auth import create_key
    return create_key(role, name or f"web-{role}-{uuid.uuid4().hex[:8]}", agent_id,
                      database_url=stack.env["DATABASE_URL"])


def revoke_key(stack, name):
    subprocess.run([sys.executable, "-m", "flask", "--app", "app:create_app", "api-keys",
                    "revoke", name], cwd=ROOT, env=stack.env, check=True,
                   capture_output=True, timeout=60)
