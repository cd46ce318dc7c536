"""The calls of one batch of channel events: read once, in one query, and shared by its events.

A call's CREATE, PROGRESS, ANSWER and HANGUP_COMPLETE often arrive in the same batch;
loading the row once instead of four times, and the rows of the whole batch in one
query instead of one per event, is most of the events process's throughput (on
PostgreSQL every query is a round trip). No other writer can change a row meanwhile
on SQLite (the batch holds the write lock); on PostgreSQL the compare-and-set of every
change catches a request that moved the call first.
"""


class BatchCalls:
    """The cache of one batch transaction's calls (by channel uuid and by call id).

    find_one(call_id, channel) is find_for_channel; find_many(call ids, channels) reads
    many calls at once; cacheable: the event names that may share loaded calls (any
    other event may change a call behind them, so it drops them).
    """

    def __init__(self, find_one, find_many, cacheable):
        self.find_one, self.find_many, self.cacheable = find_one, find_many, cacheable
        self._cache = None
        self._events, self._position, self._read = (), -1, None

    def begin(self, events=None):
        """A batch (events: its (name, event) pairs) begins; events None: the same batch
        goes on with nothing cached (a savepoint rolled back, a queue changed calls)."""
        self._cache, self._read = {}, None
        if events is not None:
            self._events, self._position = events, -1

    def before_event(self, name):
        self._position += 1
        if name not in self.cacheable:
            self._read = None
            if self._cache:
                self._cache = {}

    def end(self):
        self._cache, self._events, self._read = None, (), None

    def cached(self, channel):
        """The call cached for channel, or None (and whether there was one)."""
        cache = self._cache
        if cache is not None and channel in cache:
            return True, cache[channel]
        return False, None

    def find(self, call_id, channel):
        """The call of a channel event, as find_one answers, from the batch's query when
        it asked for this channel, else from find_one."""
        known, call = self._from_batch_query(call_id, channel)
        return call if known else self.find_one(call_id, channel)

    def keep(self, channel, call):
        """The one object of call in this batch (its legs' events must not write stale
        copies), now cached for channel too."""
        cache = self._cache
        if cache is None or call is None or not channel:
            return call
        call = cache.setdefault(("call", call.id), call)
        cache[channel] = call
        return call

    def same(self, call):
        """The batch's one object of call (loaded another way: by its job), now shared."""
        if self._cache is None or call is None:
            return call
        return self._cache.setdefault(("call", call.id), call)

    def _from_batch_query(self, call_id, channel):
        if self._cache is None or not 0 <= self._position < len(self._events) or \
                self._events[self._position][0] not in self.cacheable:
            return False, None
        if self._read is None:
            self._read = self._read_ahead()
        by_id, by_channel, ids, channels = self._read
        if call_id and call_id in by_id:
            return True, by_id[call_id]
        if (not call_id or call_id in ids) and channel in channels:
            return True, by_channel.get(channel)
        return False, None

    def _read_ahead(self):
        """The calls of this event and of the channel events after it (up to one that
        drops the cache), in one query: by id, by channel, and what was asked for."""
        ids, channels = set(), set()
        for name, event in self._events[self._position:]:
            if name not in self.cacheable:
                break
            ids.add(event.get("variable_cc_call_id"))
            channels.add(event.get("Unique-ID"))
        ids.discard(None)
        channels.discard(None)
        found = self.find_many(ids, channels)
        return ({c.id: c for c in found}, {c.fs_uuid: c for c in found if c.fs_uuid},
                ids, channels)
