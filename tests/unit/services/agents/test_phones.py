"""Browser phones in process: credentials made, encrypted, rotated and written to the
directory file; the check pausing an agent whose phone dropped (real database, Redis and
the ESL simulator's `show registrations`)."""
import json
import os

import pytest

from freeswitch.esl.commands import FreeSwitchCommands
from freeswitch.esl.directory_xml import parse_directory_xml
from models.agent import Agent, AgentStateChange
from models.agent_phone import AgentPhone
from services.agents.phones import AgentPhoneService
from services.agents.service import AgentService
from services.errors import Conflict, Unavailable
from services.publisher import Publisher
from services.redis_client import stream_key

SECRET = "test-secret-key-0123456789"


@pytest.fixture
def setup(bound_db, redis_client, sim, tmp_path):
    AgentPhone.delete().execute()
    AgentStateChange.delete().execute()
    Agent.delete().execute()
    sim.phones.clear()
    sim.phones.update({"1001": "127.0.0.1"})
    commands = FreeSwitchCommands("127.0.0.1", sim.port, "ClueCon")
    config = {"SECRET_KEY": SECRET, "FREESWITCH_DIRECTORY_DIR": str(tmp_path / "cc_agents"),
              "PHONE_WS_URL": "wss://pbx.example.com:7443", "PHONE_ICE_SERVERS":
              "stun:stun.example.com:3478, turn:turn.example.com:3478"}
    agents = AgentService(Publisher(redis_client), commands=commands, config=config)
    yield agents, AgentPhoneService(agents, commands, config), config
    commands.close()


def directory(config):
    with open(os.path.join(config["FREESWITCH_DIRECTORY_DIR"], "cc_agents.xml")) as fh:
        return parse_directory_xml(fh.read())


def test_the_first_config_makes_credentials_stored_encrypted_and_known_to_freeswitch(setup):
    agents, phones, config = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    got = phones.phone_config("a1")
    assert got["username"] == "1005" and got["sip_uri"] == "sip:1005@pbx.example.com"
    assert got["ws_url"] == "wss://pbx.example.com:7443" and got["display_name"] == "Ann"
    assert got["ice_servers"] == [{"urls": "stun:stun.example.com:3478"},
                                  {"urls": "turn:turn.example.com:3478"}]
    assert len(got["password"]) == 24
    stored = AgentPhone.get_by_id("a1").password_encrypted
    assert got["password"] not in stored  # Fernet, not plain text
    assert directory(config) == {"1005": (got["password"], "Ann")}
    assert phones.phone_config("a1")["password"] == got["password"]  # the same until rotated


def test_a_rotation_gives_a_new_password_once_and_rewrites_the_directory(setup):
    agents, phones, config = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    first = phones.phone_config("a1")["password"]
    rotated = phones.rotate("a1")
    assert rotated["password"] != first and rotated["username"] == "1005"
    assert directory(config)["1005"][0] == rotated["password"]
    assert phones.phone_config("a1")["password"] == rotated["password"]


def test_a_changed_endpoint_moves_the_phone_to_the_new_user(setup):
    agents, phones, config = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    phones.phone_config("a1")
    agents.update("a1", {"endpoint": "user/1006"})
    assert phones.phone_config("a1")["username"] == "1006"
    assert set(directory(config)) == {"1006"}


def test_only_directory_users_can_be_browser_phones_and_only_once(setup):
    agents, phones, _ = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "sip:ann@10.0.0.7"})
    with pytest.raises(Conflict) as exc:
        phones.phone_config("a1")
    assert exc.value.error_id == "agent_phone_not_user"
    agents.create({"id": "a2", "name": "Bo", "endpoint": "user/1005"})
    agents.create({"id": "a3", "name": "Cy", "endpoint": "user/1005"})
    phones.phone_config("a2")
    with pytest.raises(Conflict) as exc:
        phones.phone_config("a3")
    assert exc.value.error_id == "agent_phone_user_taken"


def test_without_the_settings_the_service_says_what_is_missing(setup):
    agents, _, config = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    bare = AgentPhoneService(agents, None, {"SECRET_KEY": SECRET})
    with pytest.raises(Unavailable) as exc:
        bare.phone_config("a1")
    assert exc.value.error_id == "phone_not_configured"
    assert "FREESWITCH_DIRECTORY_DIR" in exc.value.message


def test_an_agent_whose_browser_phone_drops_is_paused_then_back_when_it_registers(
        setup, sim, redis_client):
    agents, phones, _ = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    agents.create({"id": "desk", "name": "Desk", "endpoint": "user/1001"})
    phones.phone_config("a1")
    sim.phones["1005"] = "127.0.0.1"
    agents.login("a1")
    agents.login("desk")
    assert phones.check_phones() == ([], [])
    del sim.phones["1005"]
    del sim.phones["1001"]  # a desk phone (no browser phone row) is left alone
    assert phones.check_phones() == (["a1"], [])
    agent = Agent.get_by_id("a1")
    assert (agent.state, agent.state_reason) == ("paused", "phone-offline")
    assert Agent.get_by_id("desk").state == "available"
    sim.phones["1005"] = "127.0.0.1"
    assert phones.check_phones() == ([], ["a1"])
    assert Agent.get_by_id("a1").state == "available"
    news = [(m["type"], m["data"]["state_reason"]) for m in
            (json.loads(f[b"m"]) for _, f in redis_client.xrange(stream_key("agents")))
            if m["data"].get("id") == "a1" and m["type"].startswith("agent.")]
    assert ("agent.paused", "phone-offline") in news


def test_an_agent_paused_for_its_own_reason_is_not_resumed_by_the_check(setup, sim):
    agents, phones, _ = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    phones.phone_config("a1")
    sim.phones["1005"] = "127.0.0.1"
    agents.login("a1")
    agents.pause("a1", "lunch")
    assert phones.check_phones() == ([], [])
    assert Agent.get_by_id("a1").state_reason == "lunch"


def test_an_agent_moved_to_a_desk_phone_is_no_longer_watched(setup, sim):
    agents, phones, _ = setup
    agents.create({"id": "a1", "name": "Ann", "endpoint": "user/1005"})
    phones.phone_config("a1")
    agents.update("a1", {"endpoint": "user/1001"})  # the desk phone, registered
    agents.login("a1")
    assert phones.check_phones() == ([], [])
    assert Agent.get_by_id("a1").state == "available"

