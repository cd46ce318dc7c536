"""Provider presets: what GET /api/sip/providers shows, and the defaults a new gateway takes."""
import pytest

from freeswitch.esl.gateway_xml import TRANSPORTS
from services.sip.presets import CUSTOM, PROVIDER_PRESETS, preset_of, provider_list


def test_the_list_names_each_preset_once_with_its_default_port():
    listed = provider_list()
    assert [p["id"] for p in listed] == list(PROVIDER_PRESETS)
    twilio = next(p for p in listed if p["id"] == "twilio")
    assert (twilio["transport"], twilio["port"]) == ("udp", 5060)
    assert twilio["name"] == "Twilio Elastic SIP Trunking"


@pytest.mark.parametrize("provider", sorted(PROVIDER_PRESETS))
def test_each_preset_is_usable_as_it_stands(provider):
    preset = PROVIDER_PRESETS[provider]
    assert preset["transport"] in preset["transports"]
    assert set(preset["transports"]) <= set(TRANSPORTS)
    assert set(preset["ports"]) == set(preset["transports"])  # a port for every transport
    assert preset["requires"] and preset["note"]


def test_registering_presets_ask_for_credentials():
    for key, preset in PROVIDER_PRESETS.items():
        if preset["register"] and key != CUSTOM:
            assert "password" in preset["requires"], key


def test_no_provider_or_an_unknown_one_means_the_custom_preset():
    assert preset_of(None) is PROVIDER_PRESETS[CUSTOM]
    assert preset_of("no-such-carrier") is PROVIDER_PRESETS[CUSTOM]
    assert preset_of("vonage")["host_pattern"] == "sip.nexmo.com"
