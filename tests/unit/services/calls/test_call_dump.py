"""What clients get for a call (REST body and `calls` message) is CallSchema's dump, exactly,
however the call was loaded (the events process's fast lookups included)."""
import datetime
import uuid

from marshmallow import Schema

from models import Call, fastsql
from models.recording import Recording
from services.calls.lookup import find_for_channel
from services.calls.schemas import CallSchema, dump_call

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0, 123456)


def _calls():
    yield Call.create(fs_uuid=str(uuid.uuid4()))  # just started: mostly nulls
    yield Call.create(
        fs_uuid=str(uuid.uuid4()), fs_job_uuid=str(uuid.uuid4()), direction="inbound",
        from_number="15550001", to_number="+3312", caller_id="Ann Émile", agent_id="a-1",
        status="completed", hangup_cause="NORMAL_CLEARING", ringing_at=T0,
        answered_at=T0 + datetime.timedelta(seconds=3), ended_at=T0 + datetime.timedelta(
            seconds=70), duration=70, billsec=67, outcome="sale", notes="called back",
        metadata={"crm": [1, 2]}, record=True, quality={"live": {"samples": 2}},
        rtp_stats={"in_mos": 4.5, "in_packet_count": 1500}, mode="agent_first",
        agent_leg_uuid=str(uuid.uuid4()), bridged_at=T0, held_at=T0, hold_seconds=4,
        talk_seconds=60, ring_seconds=3, node="a")


def test_every_way_of_loading_a_call_dumps_as_the_schema_does(bound_db):
    schema = CallSchema()
    for call in _calls():
        Recording.create(call=call.id, format="mp3", source_path=f"/r/{call.id}.wav",
                         files={"mp3": {"size": 1}}, duration=1.5, truncated=True)
        loaded = [call, Call.get_by_id(call.id), fastsql.select_one(Call, "id", call.id),
                  fastsql.select_one(Call, "fs_uuid", call.fs_uuid),
                  find_for_channel(call.id, None), find_for_channel(None, call.fs_uuid),
                  fastsql.select_all(Call.select().where(Call.id == call.id))[0]]
        for one in loaded:
            # marshmallow's own dump (CallSchema.dump is the fast one, as REST answers)
            ours, theirs = dump_call(one), Schema.dump(schema, one)
            assert list(ours.items()) == list(theirs.items())
            assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]
        assert dump_call(loaded[-1])["recording"]["format"] == "mp3"
        assert schema.dump(loaded, many=True) == [Schema.dump(schema, one) for one in loaded]


def test_a_fast_lookup_reads_the_row_as_peewee_does(bound_db):
    call = next(_calls())
    fast, slow = fastsql.select_one(Call, "fs_uuid", call.fs_uuid), Call.find_by(
        "fs_uuid", call.fs_uuid)
    assert fast.__data__ == slow.__data__ and not fast._dirty
    assert fastsql.select_one(Call, "fs_uuid", "no-such-channel") is None


def test_a_channel_lookup_brings_the_calls_recording_or_none(bound_db):
    bare, recorded = _calls()
    Recording.create(call=recorded.id, format="ogg", source_path="/r/x.wav", duration=2.0)
    found = find_for_channel(None, bare.fs_uuid)
    assert found.__data__ == Call.get_by_id(bare.id).__data__ and not found._dirty
    assert dump_call(found)["recording"] is None
    found = find_for_channel(recorded.id, "not-this-channel")
    assert found.id == recorded.id
    assert dump_call(found)["recording"]["format"] == "ogg"
    assert dump_call(found)["recording"]["duration"] == 2.0
    assert find_for_channel("no-such-call", "no-such-channel") is None
    assert find_for_channel(None, None) is None


def test_a_page_read_the_fast_way_has_the_rows_peewee_reads(bound_db):
    for call in _calls():
        Recording.create(call=call.id, format="wav", source_path=f"/r/{call.id}.wav")
    for query in (Call.select().order_by(Call.created_at.desc(), Call.id.desc()).limit(5),
                  Call.select().where(Call.status == "completed").offset(1),
                  Recording.select().where(Recording.call.in_([c.id for c in Call.select()])),
                  # a join or a column list is left to peewee
                  Recording.select().join(Call).where(Call.status == "completed"),
                  Call.select(Call.id, Call.status)):
        fast, slow = fastsql.select_all(query), list(query)
        assert [type(row) for row in fast] == [type(row) for row in slow] and fast
        assert [row.__data__ for row in fast] == [row.__data__ for row in slow]
        assert not any(row._dirty for row in fast)
