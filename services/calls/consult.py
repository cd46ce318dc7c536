"""CallConsult: attended transfer (consult the target while the customer holds, then join)."""
import logging
import uuid

from freeswitch.esl import consult as fcc
from models import utcnow
from services.calls.control import fold_hold
from services.errors import Conflict

logger = logging.getLogger(__name__)

CONSULT_EVENT = "api.transfer_consult"


class CallConsult:
    """The agent talks to the target first; the customer hears hold music meanwhile.

    The consult leg is kept in consult_leg_uuid; who it rings is in the trail
    (api.transfer_consult). Complete joins customer and target with uuid_bridge and
    hangs up the agent's leg; cancel hangs up the consult leg and bridges the agent
    back to the customer. The steps go through CallControl's checks and recording.
    """

    def __init__(self, control):
        self.control = control

    @property
    def calls(self):
        return self.control.calls

    @property
    def agents(self):
        return self.control.agents

    def start(self, call_id, to=None, agent_id=None, gateway=None):
        call = self.control._answered(call_id, "transfer")
        _check_consult(call, want=False)
        if not call.agent_leg_uuid:
            raise Conflict(f"call {call.id} has no agent leg: an attended transfer needs an "
                           "agent on the line (use a blind transfer)", error_id="no_agent_leg")
        dialstring = self.control._target(call, to, agent_id, gateway)
        consult_leg = str(uuid.uuid4())
        timeout = self.calls.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45)
        command = fcc.consult_command(call.agent_leg_uuid, call.id, consult_leg, dialstring,
                                      timeout=timeout)
        if agent_id:
            self.agents.reserve(agent_id, call.id)
        try:
            self.control._send(fcc.park_after_bridge_command(call.fs_uuid), call)
            self.control._send(command, call)
        except Exception:
            if agent_id:
                self.agents.released(agent_id, call.id)  # ringing -> available again
            raise
        self._try(fcc.hold_music_command(call.fs_uuid), call)
        data = {"to": to, "agent_id": agent_id, "leg": consult_leg,
                "from_agent_id": call.agent_id, "from_leg": call.agent_leg_uuid}

        def change(c):
            c.consult_leg_uuid = consult_leg
            if c.held_at is None:
                c.held_at = utcnow()  # the customer holds while the agent consults
            return {k: v for k, v in data.items() if v is not None}
        return self.control._record(call_id, CONSULT_EVENT, change,
                                    self.calls.notifier.call_consulting,
                                    check=lambda c: _check_consult(c, want=False))

    def complete(self, call_id):
        call = self.control._answered(call_id, "complete a transfer")
        _check_consult(call, want=True)
        started = self._consult_of(call)
        self.control._send(fcc.uuid_bridge_command(call.fs_uuid, call.consult_leg_uuid), call)
        self._try(fcc.end_with_partner_command(call.fs_uuid), call)
        from_agent, from_leg = call.agent_id, call.agent_leg_uuid
        target_agent = started.get("agent_id")

        def change(c):
            c.agent_leg_uuid, c.consult_leg_uuid = c.consult_leg_uuid, None
            c.agent_id = target_agent  # None: an outside number has the customer now
            held = fold_hold(c)
            return {"agent_id": target_agent, "to": started.get("to"), "leg": c.agent_leg_uuid,
                    "from_agent_id": from_agent, "from_leg": from_leg, **held}
        done = self.control._record(call_id, "api.transfer_complete", change,
                                    self.calls.notifier.call_transferred,
                                    check=lambda c: _check_consult(c, want=True))
        if from_leg:
            self._try(fcc.hangup_command(from_leg), call)
        if from_agent and from_agent != target_agent:
            self.agents.released(from_agent, call.id)  # on-call -> wrap-up
        if target_agent:
            self.agents.connected(target_agent, call.id)  # ringing -> on-call
        return done

    def cancel(self, call_id):
        call = self.control._answered(call_id, "cancel a transfer")
        _check_consult(call, want=True)
        started = self._consult_of(call)
        self._try(fcc.hangup_command(call.consult_leg_uuid), call)
        self.control._send(fcc.uuid_bridge_command(call.agent_leg_uuid, call.fs_uuid), call)
        self._try(fcc.end_with_partner_command(call.fs_uuid), call)
        self._try(fcc.hangup_after_bridge_command(call.agent_leg_uuid), call)

        def change(c):
            leg, c.consult_leg_uuid = c.consult_leg_uuid, None
            return {"leg": leg, "agent_id": started.get("agent_id"), **fold_hold(c)}
        done = self.control._record(call_id, "api.transfer_cancel", change,
                                    self.calls.notifier.call_transfer_cancelled,
                                    check=lambda c: _check_consult(c, want=True))
        if started.get("agent_id"):
            self.agents.released(started["agent_id"], call.id)  # ringing -> available
        return done

    # ----- helpers -------------------------------------------------------
    def _consult_of(self, call):
        """The trail data of the call's running consult (who it rings)."""
        for event in reversed(list(self.calls.events_of(call.id))):
            if event.event_name == CONSULT_EVENT and (event.data or {}).get("leg") == \
                    call.consult_leg_uuid:
                return event.data or {}
        return {}

    def _try(self, command, call=None):
        """A step whose failure leaves the call usable (a leg that is gone already)."""
        try:
            self.calls.commands.commands_for(call).api(command)
        except Exception as exc:
            logger.warning("%s failed: %s", command.split(" ", 1)[0], exc)


def _check_consult(call, want):
    if want and not call.consult_leg_uuid:
        raise Conflict(f"call {call.id} has no transfer consultation running",
                       error_id="no_consult")
    if not want and call.consult_leg_uuid:
        raise Conflict(f"call {call.id} is consulting already: complete or cancel that "
                       "transfer first", error_id="consult_in_progress")
