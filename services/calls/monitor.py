"""CallMonitor: a supervisor listens to, whispers to or barges into an agent's live call."""
import uuid

from freeswitch.esl import consult as fcc
from freeswitch.esl.connection import FreeSwitchUnavailable
from services.agents.endpoints import dial_string, parse_endpoint
from services.errors import Conflict, Unavailable, Unprocessable

MODES = tuple(fcc.EAVESDROP_DIGITS)  # listen, whisper, barge
START_EVENT, MODE_EVENT, STOP_EVENT = "api.monitor", "api.monitor_mode", "api.monitor_stop"


class CallMonitor:
    """The supervisor's endpoint is rung and, on answer, eavesdrops on the agent's leg.

    The monitor leg is named in the trail (api.monitor data.leg) and tagged as a
    former agent leg, so its events never move the call or an agent. The mode
    starts as asked and switches through eavesdrop's DTMF controls.
    """

    def __init__(self, control):
        self.control = control

    @property
    def calls(self):
        return self.control.calls

    def start(self, call_id, mode, endpoint=None, supervisor_agent_id=None):
        call = self._with_agent(call_id, "be monitored")
        if self._running(call):
            raise Conflict(f"call {call.id} is being monitored already: stop that first",
                           error_id="monitor_in_progress")
        dialstring, shown = self._endpoint(endpoint, supervisor_agent_id)
        leg = str(uuid.uuid4())
        command = fcc.monitor_originate_command(
            leg, call.id, dialstring, call.agent_leg_uuid, mode,
            timeout=self.calls.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45))
        try:  # the supervisor's phone rings in the background; the trail names its leg
            self.calls.commands.commands_for(call).bgapi(command)
        except FreeSwitchUnavailable as exc:
            raise Unavailable(f"FreeSWITCH is unreachable; nothing was changed ({exc})",
                              headers={"Retry-After": "5"},
                              error_id="freeswitch_unavailable") from None
        data = {"leg": leg, "mode": mode, "endpoint": shown, "agent_leg": call.agent_leg_uuid}
        return self.control._record(call_id, START_EVENT, lambda c: data,
                                    self.calls.notifier.call_monitor_changed)

    def switch(self, call_id, mode):
        call = self._with_agent(call_id, "switch monitoring")
        running = self._running(call)
        if not running:
            raise Conflict(f"call {call.id} is not being monitored", error_id="no_monitor")
        self.control._send(fcc.monitor_mode_command(running["leg"], mode), call)
        return self.control._record(call_id, MODE_EVENT,
                                    lambda c: {"leg": running["leg"], "mode": mode},
                                    self.calls.notifier.call_monitor_changed)

    def stop(self, call_id):
        call = self._with_agent(call_id, "stop monitoring")
        running = self._running(call)
        if not running:
            raise Conflict(f"call {call.id} is not being monitored", error_id="no_monitor")
        try:
            self.control._send(fcc.hangup_command(running["leg"]), call)
        except Conflict:
            pass  # the supervisor hung up already: stopping is done
        return self.control._record(call_id, STOP_EVENT,
                                    lambda c: {"leg": running["leg"]},
                                    self.calls.notifier.call_monitor_changed)

    # ----- helpers -------------------------------------------------------
    def _with_agent(self, call_id, action):
        call = self.control._answered(call_id, action)
        if not call.agent_leg_uuid:
            raise Conflict(f"call {call.id} has no agent leg to monitor", error_id="no_agent_leg")
        return call

    def _endpoint(self, endpoint, supervisor_agent_id):
        """(dial string, endpoint text): the given endpoint, else the supervisor's agent's."""
        try:
            if endpoint:
                parsed = parse_endpoint(endpoint)
                return dial_string(parsed.text), parsed.text
            if supervisor_agent_id and self.control.agents is not None:
                text = self.control.agents.get(supervisor_agent_id).endpoint
                return dial_string(text), text
        except ValueError as exc:
            raise Unprocessable(str(exc), errors={"json": {"endpoint": [str(exc)]}}) from None
        raise Unprocessable("give the `endpoint` that rings for the supervisor (your key "
                            "names no agent)", error_id="monitor_endpoint_required",
                            errors={"json": {"endpoint": ["required"]}})

    def _running(self, call):
        """The trail data of the monitoring now running on call, or None."""
        running = None
        for event in self.calls.events_of(call.id):
            if event.event_name == START_EVENT:
                running = dict(event.data or {})
            elif event.event_name == STOP_EVENT and running and \
                    (event.data or {}).get("leg") == running.get("leg"):
                running = None
            elif event.event_name == MODE_EVENT and running:
                running["mode"] = (event.data or {}).get("mode")
        return running
