"""Who owns what: the lookups the access policy uses to keep agents to their own calls."""
import uuid

from models import Call
from models.recording import Recording
from services.auth import owner_of


def test_owner_of_calls_and_recordings(bound_db):
    call = Call.create(direction="outbound", to_number="1000", agent_id="A3", status="completed")
    recording = Recording.create(call=call, format="wav", source_path=f"/tmp/{call.id}.wav")
    assert owner_of("call_id", call.id) == (True, "A3")
    assert owner_of("recording_id", recording.id) == (True, "A3")
    assert owner_of("call_id", uuid.uuid4()) == (True, None)  # no such call: nobody's
    assert owner_of("gateway_name", "gw1") == (False, None)  # not an owned resource
