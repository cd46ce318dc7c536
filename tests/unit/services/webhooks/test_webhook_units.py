"""The pieces of webhooks that need no running stack: address checks, signing, matching."""
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from services.calls.export import csv_cell
from services.webhooks import sender
from services.webhooks.dispatch import message_id, parse_schedule
from services.webhooks.events import Subscription, order_key, unknown_types
from services.webhooks.service import new_secret


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                                "169.254.169.254", "224.0.0.1", "0.0.0.0", "100.64.0.1",
                                "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1"])
def test_non_public_addresses_are_refused(ip):
    assert sender.address_refused(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(ip):
    assert sender.address_refused(ip) is None


def test_the_check_follows_dns_and_names_the_reason():
    with pytest.raises(sender.Refused, match="localhost resolves to .* loopback"):
        sender.checked_address("localhost", 80, allow_private=False)
    assert sender.checked_address("localhost", 80, allow_private=True)


def test_a_refused_url_fails_the_attempt_for_good_without_a_connection():
    outcome = sender.post("http://127.0.0.1:9/hook", "{}", {}, 1.0, allow_private=False)
    assert not outcome.ok and outcome.final and "loopback" in outcome.error
    for url in ("ftp://example.com/", "http://user:pw@example.com/", "http:///nohost"):
        with pytest.raises(sender.Refused):
            sender.split_url(url)


def test_signed_headers_verify_with_the_reference_code():
    secret = new_secret()
    body = '{"id":1,"channel":"calls","type":"call.answered","ts":"x","data":{}}'
    headers = sender.signed_headers(secret, "msg_1", body)
    assert StandardWebhook(secret).verify(body, headers)["type"] == "call.answered"
    with pytest.raises(Exception):
        StandardWebhook(new_secret()).verify(body, headers)


def test_matching_by_type_family_and_filter():
    sub = Subscription("w", ["call.answered", "recording.*"], {"agent_id": "a1", "queue_id": None})
    assert sub.wants("call.answered", {"agent_id": "a1"})
    assert not sub.wants("call.answered", {"agent_id": "a2"})
    assert not sub.wants("call.ended", {"agent_id": "a1"})
    assert sub.wants("recording.ready", {"agent_id": "a1"})
    queue = Subscription("q", ["call.*"], {"queue_id": "sales"})
    assert queue.wants("call.ended", {"metadata": {"queue_id": "sales"}})
    assert unknown_types(["call.answered", "call.*", "call.nope", "x.*"]) == ["call.nope", "x.*"]
    assert order_key("calls", {"id": "c1"}) == order_key("recordings", {"call_id": "c1"})


def test_delivery_ids_are_stable_and_the_default_schedule_spans_about_a_day():
    assert message_id("w", "body") == message_id("w", "body") != message_id("w2", "body")
    schedule = parse_schedule(None)
    assert len(schedule) == 7 and 20 * 3600 <= sum(schedule) <= 30 * 3600


@pytest.mark.parametrize("value,cell", [("=1+1", "'=1+1"), ("+1555", "'+1555"), ("-3", "'-3"),
                                        ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
                                        ("ok", "ok"), (None, ""), (5, "5"), (True, "true"),
                                        ({"a": "é"}, '{"a":"é"}')])
def test_csv_cells_escape_formulas(value, cell):
    assert csv_cell(value) == cell
