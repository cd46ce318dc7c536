"""The channel commands of reconciliation, against the ESL simulator's answers."""
import pytest

from freeswitch.esl import commands
from models import utcnow


@pytest.fixture
def api(sim):
    """api(command) -> body, as the simulator answers `api <command>`."""
    return lambda command: sim.api(*command.split(" ", 1))


def test_a_snapshot_lists_live_channels_with_their_state_and_the_confirmed_gone(sim, api):
    ringing = sim.inbound_call(answer_after=None)
    ended = sim.inbound_call(answer_after=None)
    sim.hangup_while_disconnected(ended)
    never_seen = "6f1f3a52-0000-4000-8000-000000000000"
    sim.wait_for(lambda: ended not in {r["uuid"] for r in commands.parse_channels(
        api(commands.SHOW_CHANNELS))})
    taken = utcnow()
    asked = []

    def suspects(listed):
        asked.append(set(listed))
        return [ringing, ended, never_seen]

    snap = commands.take_channel_snapshot(api, taken, suspects)
    listed = {row["uuid"]: row for row in snap.rows}
    assert snap.taken_at == taken
    assert ringing in listed and ended not in listed and ringing in asked[0]
    assert listed[ringing]["_dump"]["Unique-ID"] == ringing
    # uuid_exists: the ringing channel is there, the other two are gone.
    assert snap.gone == {ended, never_seen}
    sim.hangup(ringing)


@pytest.mark.parametrize("body,answer", [("true", True), ("false", False), ("true\n", True),
                                         ("-ERR no such command\n", None), ("", None)])
def test_uuid_exists_answers_are_read_strictly(body, answer):
    assert commands.parse_uuid_exists(body) is answer


def test_an_unreadable_channel_list_is_an_error_not_an_empty_switch():
    with pytest.raises(ValueError):
        commands.parse_channels("-ERR timeout\n")
    assert commands.parse_channels('{"row_count":0}') == []


def test_channel_uuids_are_checked_before_they_go_into_a_command():
    with pytest.raises(ValueError):
        commands.uuid_exists_command("abc; hupall")
    assert commands.parse_uuid_dump("-ERR No such channel!\n") is None
