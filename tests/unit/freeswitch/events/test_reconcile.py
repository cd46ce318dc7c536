"""Reconciliation from end to end in process: the listener's snapshot over a real Event
Socket connection to the simulator, then the verdicts applied to a real database."""
import datetime
import uuid

import pytest

from freeswitch.esl.connection import ESLConnection
from freeswitch.events.calls import CallEventHandlers
from freeswitch.events.listener import EventListener
from models import Call, CallEvent, utcnow
from services.calls.service import CallService
from services.outbox import Outbox
from services.publisher import Publisher


@pytest.fixture
def handlers(bound_db, redis_client):
    CallEvent.delete().execute()
    Call.delete().execute()
    return CallEventHandlers(CallService(Publisher(redis_client)))


@pytest.fixture
def listener(sim, handlers):
    config = {"FREESWITCH_HOST": "127.0.0.1", "FREESWITCH_PORT": sim.port,
              "FREESWITCH_PASSWORD": "ClueCon"}
    made = EventListener(config, handlers.subscriptions(), handlers.reconcile,
                         batch_observer=handlers, reconcile_suspects=handlers.channels_to_check)
    made._conn = ESLConnection("127.0.0.1", sim.port, "ClueCon").connect()
    yield made
    made._conn.close()


def live_call(fs_uuid, status="in-progress"):
    long_ago = utcnow() - datetime.timedelta(minutes=5)
    return Call.create(fs_uuid=fs_uuid, status=status, created_at=long_ago, updated_at=long_ago,
                       answered_at=long_ago if status == "in-progress" else None)


def reconcile_once(listener):
    listener.request_reconcile()
    name, snapshot = listener.queue.get(timeout=5)
    outbox = Outbox()
    with outbox.atomic():
        return listener.reconcile(snapshot, outbox)


def test_only_calls_whose_channels_freeswitch_no_longer_has_are_closed(sim, listener):
    up = live_call(sim.inbound_call(answer_after=None), status="ringing")
    hung_up = sim.inbound_call(answer_after=None)
    missed = live_call(hung_up)
    sim.hangup_while_disconnected(hung_up)  # its CHANNEL_HANGUP_COMPLETE never came
    closed, adopted = reconcile_once(listener)
    assert (closed, adopted) == (1, 0)
    assert Call.get_by_id(up.id).status == "ringing"
    assert Call.get_by_id(missed.id).status == "completed"  # it had been answered
    sim.hangup(up.fs_uuid)


def test_a_channel_the_database_does_not_know_is_adopted(sim, listener):
    fs_uuid = sim.inbound_call(from_number="15553334444", answer_after=None)
    live_call(str(uuid.uuid4()), status="ringing")  # not on the switch: closed
    closed, adopted = reconcile_once(listener)
    assert (closed, adopted) == (1, 1)
    assert Call.get(Call.fs_uuid == fs_uuid).from_number == "15553334444"
    sim.hangup(fs_uuid)


def test_an_agent_leg_of_a_known_call_is_no_call_and_is_shown_to_the_leg_watchers(
        sim, listener, handlers):
    """An agent's leg parked unbridged (a queue offer rung late) is listed like any channel:
    it is a leg of its call, never adopted as an outbound call of its own."""
    from freeswitch.esl import queues as fsq
    caller = sim.inbound_call(answer_after=0.01)
    call = live_call(caller)
    seen = []
    handlers.leg_watchers.append(lambda event, outbox: seen.append(event["Unique-ID"]))
    leg = str(uuid.uuid4())
    listener._conn.bgapi(fsq.offer_originate_command(leg, call.id, str(uuid.uuid4()),
                                                     "user/1001", 15), job_uuid=leg)
    sim.wait_for(lambda: leg in sim.channels and sim.channels[leg].answered)
    closed, adopted = reconcile_once(listener)
    assert (closed, adopted) == (0, 0)
    assert seen == [leg]
    assert Call.select().count() == 1 and not Call.select().where(Call.fs_uuid == leg).exists()
    sim.hangup(leg)
    sim.hangup(caller)
