"""A configuration request merged with the stored gateway and its preset, and the 422s it earns."""
import pytest

from models.sip import SipGateway
from services.errors import Unprocessable
from services.sip.configuration import check_consistency, merged_values, password_after


def stored(**values):
    """A gateway as the database holds it (not saved: these rules never touch the database)."""
    base = {"name": "gw", "provider": "custom", "host": "pbx.example.com", "port": 5060,
            "transport": "udp", "username": "1001", "register": True, "codecs": ["PCMU"],
            "expiry": 3600, "enabled": True, "password_encrypted": "token"}
    return SipGateway(**{**base, **values})


def test_a_new_gateway_takes_its_presets_defaults():
    values = merged_values(SipGateway(name="rc"), {"name": "rc", "provider": "ringcentral",
                                                   "host": "sip.ringcentral.com"}, created=True)
    assert values["transport"] == "udp" and values["port"] == 5060
    assert values["register"] is True and values["expiry"] == 600
    assert values["codecs"] == ["PCMU", "PCMA", "G722"]
    assert values["enabled"] is True and values["caller_id"] is None


def test_a_new_gateway_without_host_is_refused():
    with pytest.raises(Unprocessable) as raised:
        merged_values(SipGateway(name="x"), {"name": "x"}, created=True)
    assert raised.value.errors == {"json": {"host": ["Missing data for required field."]}}


def test_the_default_port_follows_a_new_transport():
    values = merged_values(stored(), {"transport": "tls"}, created=False)
    assert (values["transport"], values["port"]) == ("tls", 5061)


def test_a_chosen_port_stays_when_the_transport_changes():
    values = merged_values(stored(port=5070), {"transport": "tcp"}, created=False)
    assert (values["transport"], values["port"]) == ("tcp", 5070)


def test_fields_left_out_keep_their_stored_value():
    values = merged_values(stored(caller_id="+15551230000"), {"expiry": 900}, created=False)
    assert values["expiry"] == 900 and values["caller_id"] == "+15551230000"
    assert values["host"] == "pbx.example.com"


def test_a_transport_the_provider_lacks_is_refused():
    with pytest.raises(Unprocessable) as raised:
        check_consistency({"provider": "twilio", "transport": "ws", "register": False}, None)
    assert raised.value.errors["json"] == {
        "transport": ["Twilio Elastic SIP Trunking supports udp, tcp, tls"]}


def test_registration_needs_a_username_and_a_password():
    with pytest.raises(Unprocessable) as raised:
        check_consistency({"provider": "custom", "transport": "udp", "register": True}, None)
    assert raised.value.errors["json"] == {"username": ["required when register is true"],
                                           "password": ["required when register is true"]}


def test_a_stored_password_is_enough_to_register():
    gateway = stored()
    password = password_after(gateway, {"username": "1002"}, created=False)
    assert password == "(stored)"
    check_consistency({"provider": "custom", "transport": "udp", "register": True,
                       "username": "1002"}, password)  # no 422


def test_a_new_gateway_has_no_password_unless_given():
    assert password_after(SipGateway(name="n"), {}, created=True) is None
    assert password_after(SipGateway(name="n"), {"password": "pw"}, created=True) == "pw"
