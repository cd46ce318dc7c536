"""Who owns what: the lookups the access policy uses to keep agents to their own calls."""
import uuid

from models import Call
from models.recording import Recording
from services.auth import Principal, can_receive, owner_of


def test_owner_of_calls_and_recordings(bound_db):
    call = Call.create(direction="outbound", to_number="1000", agent_id="A3", status="completed")
    recording = Recording.create(call=call, format="wav", source_path=f"/tmp/{call.id}.wav")
    assert owner_of("call_id", call.id) == (True, "A3")
    assert owner_of("recording_id", recording.id) == (True, "A3")
    assert owner_of("call_id", uuid.uuid4()) == (True, None)  # no such call: nobody's
    assert owner_of("gateway_name", "gw1") == (False, None)  # not an owned resource


def test_an_agent_sees_only_its_own_agent_messages_and_owns_only_itself():

    ann = Principal(key_id="k1", name="ann", role="agent", agent_id="ann")
    boss = Principal(key_id="k2", name="boss", role="supervisor")
    about_ann = {"channel": "agents", "type": "agent.available", "data": {"id": "ann"}}
    about_bob = {"channel": "agents", "type": "agent.paused", "data": {"id": "bob"}}
    assert can_receive(ann, about_ann) and not can_receive(ann, about_bob)
    assert can_receive(boss, about_bob)
    assert owner_of("agent_id", "bob") == (True, "bob")
