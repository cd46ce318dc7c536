"""CallNotifier: the only thing that publishes on the `calls` channel, always after the commit."""
from services.calls import state as cs
from services.calls.schemas import dump_call

CHANNEL = "calls"


class CallNotifier:
    """Queues news of a call in the caller's outbox, sent once its transaction commits.

    Each payload is the REST dump taken when the method is called: a later
    change in the same transaction (a batch of events) must not leak into an
    earlier message.
    """

    def __init__(self, publisher):
        self.publisher = publisher

    def _queue(self, event_type, data, outbox):
        outbox.publish(self.publisher, CHANNEL, event_type, data)

    def call_initiated(self, call, outbox):
        self._queue("call.initiated", dump_call(call), outbox)

    def call_changed(self, call, outbox):
        """The call reached call.status: call.ringing, call.answered or call.ended."""
        self._queue(cs.event_type(call.status), dump_call(call), outbox)

    def call_updated(self, call, outbox):
        """Something other than the status changed (notes, outcome, FreeSWITCH figures)."""
        self._queue("call.updated", dump_call(call), outbox)

    def call_deleted(self, call_id, outbox):
        self._queue("call.deleted", {"id": call_id}, outbox)

    def quality_alert(self, call, event_type, alert, outbox):
        """call.quality_degraded / call.quality_recovered: the call dump plus the alert."""
        data = dump_call(call)
        data["alert"] = alert
        self._queue(event_type, data, outbox)

    def quality_summary(self, call, outbox):
        self._queue("call.quality_summary", dump_call(call), outbox)

    # ----- live call control (services.calls.control) ---------------------
    def call_held(self, call, outbox):
        self._queue("call.held", dump_call(call), outbox)

    def call_unheld(self, call, outbox):
        self._queue("call.unheld", dump_call(call), outbox)

    def call_muted(self, call, outbox):
        self._queue("call.muted", dump_call(call), outbox)

    def call_unmuted(self, call, outbox):
        self._queue("call.unmuted", dump_call(call), outbox)

    def call_dtmf_sent(self, call, outbox):
        self._queue("call.dtmf_sent", dump_call(call), outbox)

    def call_transferred(self, call, outbox):
        self._queue("call.transferred", dump_call(call), outbox)

    # ----- attended transfer and monitoring (consult.py, monitor.py) -------
    def call_consulting(self, call, outbox):
        """The agent consults a transfer target; the customer is on hold meanwhile."""
        self._queue("call.transfer_consulting", dump_call(call), outbox)

    def call_transfer_cancelled(self, call, outbox):
        self._queue("call.transfer_cancelled", dump_call(call), outbox)

    def call_monitor_changed(self, call, outbox):
        """A supervisor started, switched or stopped monitoring (the trail says which)."""
        self._queue("call.monitor_changed", dump_call(call), outbox)
