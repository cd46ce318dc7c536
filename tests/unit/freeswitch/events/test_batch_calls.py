"""BatchCalls: the calls of a batch of channel events are read in one query, and answer as
find_for_channel would (by our call id first, else by channel)."""
from types import SimpleNamespace

from freeswitch.events.batch_calls import BatchCalls

CACHEABLE = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
CALLS = [SimpleNamespace(id="call-1", fs_uuid="ch-1"), SimpleNamespace(id="call-2",
                                                                       fs_uuid="ch-2"),
         SimpleNamespace(id="call-3", fs_uuid=None)]  # started, its channel not seen yet


class Store:
    """find_for_channel and calls_for_channels over CALLS, counting their queries."""

    def __init__(self):
        self.one, self.many = [], []

    def find_one(self, call_id, channel):
        self.one.append((call_id, channel))
        return next((c for c in CALLS if call_id and c.id == call_id), None) or \
            next((c for c in CALLS if channel and c.fs_uuid == channel), None)

    def find_many(self, ids, channels):
        self.many.append((set(ids), set(channels)))
        return [c for c in CALLS if c.id in ids or (c.fs_uuid and c.fs_uuid in channels)]


def event(name, channel, call_id=None):
    return name, {"Unique-ID": channel, **({"variable_cc_call_id": call_id} if call_id else {})}


def walk(batch, events):
    """What each event's lookup answers, applied as the listener applies a batch."""
    answers = []
    batch.begin(events)
    for name, ev in events:
        batch.before_event(name)
        hit, call = batch.cached(ev["Unique-ID"])
        if not hit:
            call = batch.keep(ev["Unique-ID"], batch.find(ev.get("variable_cc_call_id"),
                                                          ev["Unique-ID"]))
        answers.append(call.id if call else None)
    batch.end()
    return answers


def test_the_calls_of_a_batch_are_read_in_one_query_with_find_for_channels_answers():
    store = Store()
    events = [event("CHANNEL_CREATE", "ch-1"), event("CHANNEL_CREATE", "ch-new"),
              event("CHANNEL_CREATE", "ch-3", "call-3"),  # ours: found by its id
              event("CHANNEL_ANSWER", "ch-2", "call-missing"),  # an id we do not know
              event("CHANNEL_ANSWER", "ch-1"), event("CHANNEL_HANGUP_COMPLETE", "ch-2")]
    answers = walk(BatchCalls(store.find_one, store.find_many, CACHEABLE), events)
    expected = [Store().find_one(ev.get("variable_cc_call_id"), ev["Unique-ID"])
                for _, ev in events]
    assert answers == [c.id if c else None for c in expected]
    assert answers == ["call-1", None, "call-3", "call-2", "call-1", "call-2"]
    assert len(store.many) == 1 and store.one == []  # one query for the six events


def test_an_event_that_may_change_calls_makes_the_rest_read_again_from_there():
    store = Store()
    events = [event("CHANNEL_CREATE", "ch-1"), event("BACKGROUND_JOB", "job"),
              event("CHANNEL_ANSWER", "ch-2"), event("CHANNEL_ANSWER", "ch-1")]
    batch = BatchCalls(store.find_one, store.find_many, CACHEABLE)
    assert walk(batch, events) == ["call-1", None, "call-2", "call-1"]
    # before the job: only ch-1; after it, read anew from the first event after the job
    assert store.many[0] == (set(), {"ch-1"})
    assert store.many[-1] == (set(), {"ch-2", "ch-1"})
    assert store.one == [(None, "job")]  # a job's lookup is not part of the batch query


def test_without_the_batchs_events_each_lookup_asks_on_its_own():
    store = Store()
    batch = BatchCalls(store.find_one, store.find_many, CACHEABLE)
    batch.begin()  # no events told (or no batch at all): as find_for_channel
    assert batch.find(None, "ch-2").id == "call-2"
    assert store.many == [] and store.one == [(None, "ch-2")]
    batch.end()
    assert batch.find("call-1", None).id == "call-1"


def test_a_call_loaded_by_its_job_is_the_object_its_channel_events_change():
    store = Store()
    batch = BatchCalls(store.find_one, store.find_many, CACHEABLE + ("BACKGROUND_JOB",))
    events = [event("BACKGROUND_JOB", "job-1"), event("CHANNEL_ANSWER", "ch-2", "call-2")]
    batch.begin(events)
    batch.before_event("BACKGROUND_JOB")
    by_job = batch.same(SimpleNamespace(id="call-2", fs_uuid="ch-2"))  # another load of it
    by_job.status = "failed"
    batch.before_event("CHANNEL_ANSWER")
    by_channel = batch.keep("ch-2", batch.find("call-2", "ch-2"))
    assert by_channel is by_job and by_channel.status == "failed"
