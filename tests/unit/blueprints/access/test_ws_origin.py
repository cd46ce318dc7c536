"""The /ws Origin rule: absent, this service's own origin, or one of FRONTEND_URL."""
import pytest

from blueprints.access.websocket import normalized_origin, origin_allowed

OWN = "http://127.0.0.1:3001"
FRONTEND = ["http://localhost:3000", "https://console.example"]


@pytest.mark.parametrize("url, expected", [
    ("http://Example.COM", "http://example.com"),
    ("https://example.com:443/", "https://example.com"),
    ("http://example.com:80", "http://example.com"),
    ("http://example.com:8080/path?q=1", "http://example.com:8080"),
    ("http://[::1]:3001", "http://[::1]:3001"),
    ("null", None),
    ("", None),
    ("http://example.com:99999", None),
])
def test_origins_are_compared_in_one_form(url, expected):
    assert normalized_origin(url) == expected


@pytest.mark.parametrize("origin", [
    OWN, "http://127.0.0.1:3001/", "http://localhost:3000", "https://console.example:443"])
def test_allowed(origin):
    assert origin_allowed(origin, OWN, FRONTEND)


@pytest.mark.parametrize("origin", [
    "http://evil.example", "http://127.0.0.1:3002", "https://127.0.0.1:3001",
    "http://console.example", "null", "http://localhost:3000.evil.example"])
def test_refused(origin):
    assert not origin_allowed(origin, OWN, FRONTEND)


def test_a_wildcard_frontend_allows_any_origin_as_cors_does():
    assert origin_allowed("http://evil.example", OWN, ["*"])
