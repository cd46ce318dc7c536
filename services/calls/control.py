"""CallControl: what an agent or supervisor does to a live call (hold, mute, DTMF, transfer)."""
import logging
import uuid

from freeswitch.esl import commands as fsc
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from models import utcnow
from services.agents.endpoints import dial_string
from services.calls import state as cs
from services.calls.guard import retried
from services.calls.service import SOURCE_API
from services.errors import BadGateway, Conflict, Unavailable, Unprocessable
from services.outbox import Outbox

logger = logging.getLogger(__name__)

MUTE_EVENTS = ("api.mute", "api.unmute")


class CallControl:
    """Each action checks the call's state first, then sends one FreeSWITCH command,
    then records it (trail + row) and has the CallNotifier announce it after commit.

    The state is checked before sending because FreeSWITCH does not always say no
    (`uuid_hold` answers +OK for a channel it does not have), and once more when
    recording, on a freshly read row, so a hangup racing the request is not overwritten.
    """

    def __init__(self, calls, agents=None):
        self.calls = calls
        # Set by the queue engine (services/queues/engine.py register): check(queue_id)
        # raises 404 for an unknown queue, join(call_id, queue_id) enqueues the caller.
        self.queues = None
        self.agents = agents

    @property
    def notifier(self):
        return self.calls.notifier

    # ----- hold ------------------------------------------------------------
    def hold(self, call_id):
        """Put the customer on hold: they hear the switch's hold music."""
        call = self._answered(call_id, "hold")
        _check_hold(call, want_held=False)
        self._send_hold(fsc.hold_command(_hold_leg(call)), call)
        return self._record(call_id, "api.hold", self._set_held, self.notifier.call_held,
                            check=lambda c: _check_hold(c, want_held=False))

    def unhold(self, call_id):
        """Take the customer off hold; the time on hold is added to hold_seconds."""
        call = self._answered(call_id, "unhold")
        _check_hold(call, want_held=True)
        self._send_hold(fsc.hold_command(_hold_leg(call), off=True), call)
        return self._record(call_id, "api.unhold", fold_hold, self.notifier.call_unheld,
                            check=lambda c: _check_hold(c, want_held=True))

    def _send_hold(self, command, call):
        """uuid_hold [off]: FreeSWITCH answers "-ERR Operation failed" when the leg already
        is where we want it (held, or not held); the switch is then right as it is and the
        call's record follows it instead of failing with a 502."""
        try:
            self._send(command, call)
        except BadGateway as exc:
            if "Operation failed" not in exc.message:
                raise
            logger.info("%s: the leg already was in that state at the switch", command)

    @staticmethod
    def _set_held(call):
        call.held_at = utcnow()
        return {"leg": _hold_leg(call)}

    # ----- mute ------------------------------------------------------------
    def mute(self, call_id):
        """Silence the agent's microphone (the customer hears nothing from the agent)."""
        return self._mute(call_id, True)

    def unmute(self, call_id):
        return self._mute(call_id, False)

    def _mute(self, call_id, muted):
        action = "mute" if muted else "unmute"
        call = self._answered(call_id, action)
        if not call.agent_leg_uuid:
            raise Conflict(f"call {call.id} has no agent leg: there is no agent microphone to "
                           f"{action}", error_id="no_agent_leg")
        self._send(fsc.mute_command(call.agent_leg_uuid, muted), call)
        notify = self.notifier.call_muted if muted else self.notifier.call_unmuted
        return self._record(call_id, "api." + action,
                            lambda c: {"leg": c.agent_leg_uuid}, notify)

    # ----- DTMF ------------------------------------------------------------
    def dtmf(self, call_id, digits):
        """Send digits to the customer's side (e.g. to walk a far IVR)."""
        call = self._answered(call_id, "dtmf")
        try:
            command = fsc.dtmf_command(call.fs_uuid, digits)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors={"json": {"digits": [str(exc)]}}) from None
        self._send(command, call)
        return self._record(call_id, "api.dtmf", lambda c: {"digits": digits},
                            self.notifier.call_dtmf_sent)

    # ----- blind transfer --------------------------------------------------
    def transfer(self, call_id, to=None, agent_id=None, gateway=None, queue=None):
        """Send the customer to a number, an agent or a queue; the call keeps its id, and
        the agent who had it (if any) goes to wrap-up."""
        call = self._answered(call_id, "transfer")
        if queue is not None:
            return self._transfer_to_queue(call, queue, to or agent_id)
        target_leg = str(uuid.uuid4())
        dialstring = self._target(call, to, agent_id, gateway)
        if agent_id:
            self.agents.reserve(agent_id, call.id)
        try:
            self._send(fsc.transfer_command(call.fs_uuid, dialstring, leg_uuid=target_leg), call)
        except Exception:
            if agent_id:
                self.agents.released(agent_id, call.id)  # ringing -> available again
            raise
        previous_agent = call.agent_id
        target = {"to": to, "agent_id": agent_id, "leg": target_leg,
                  "from_agent_id": previous_agent, "from_leg": call.agent_leg_uuid}
        done = self._record(call_id, "api.transfer",
                            lambda c: _transferred(c, target), self.notifier.call_transferred)
        if previous_agent and previous_agent != agent_id and self.agents is not None:
            self.agents.released(previous_agent, call.id)
        return done

    def _transfer_to_queue(self, call, queue_id, other_target):
        """The customer leaves the agent and waits in queue_id (parked, then the queue's
        music and offers, like an inbound caller)."""
        if other_target or self.queues is None:
            raise Unprocessable("give one of `to` (a number), `agent_id` or `queue`",
                                error_id="transfer_target_required")
        self.queues.check(queue_id)
        self._send(fsc.park_command(call.fs_uuid), call)
        previous_agent = call.agent_id
        target = {"queue": queue_id, "agent_id": None, "from_agent_id": previous_agent,
                  "from_leg": call.agent_leg_uuid}
        done = self._record(call.id, "api.transfer",
                            lambda c: _transferred(c, target), self.notifier.call_transferred)
        if previous_agent and self.agents is not None:
            self.agents.released(previous_agent, call.id)
        self.queues.join(call.id, queue_id)
        return done

    def _target(self, call, to, agent_id, gateway):
        if bool(to) == bool(agent_id):
            raise Unprocessable("give either `to` (a number) or `agent_id`",
                                error_id="transfer_target_required")
        try:
            if agent_id:
                return dial_string(self.agents.get(agent_id).endpoint)
            gateway = gateway or call.gateway or self.calls.config.get("DEFAULT_GATEWAY")
            return self.calls.commands.dialstring(to, gateway)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors={"json": {"to": [str(exc)]}}) from None

    # ----- shared steps ----------------------------------------------------
    def _answered(self, call_id, action):
        """The call, if customer and service are talking; else 409 with the reason."""
        call = self.calls.get(call_id)
        _check_answered(call, action)
        return call

    def _send(self, command, call=None):
        try:  # to the call's FreeSWITCH node
            fsc.control_reply_ok(self.calls.commands.commands_for(call).api(command))
        except FreeSwitchUnavailable as exc:
            raise Unavailable(f"FreeSWITCH is unreachable; nothing was changed ({exc})",
                              headers={"Retry-After": "5"},
                              error_id="freeswitch_unavailable") from None
        except FreeSwitchError as exc:
            if "No such channel" in str(exc) or "Cannot locate" in str(exc):
                raise Conflict(f"FreeSWITCH no longer has the call's channel ({exc})",
                               error_id="channel_gone") from None
            raise BadGateway(f"FreeSWITCH refused the command: {exc}",
                             error_id="control_refused") from None

    def _record(self, call_id, event_name, change, notify, check=None):
        """Store the action on a freshly read row: change(call) -> the trail's data."""
        def work():
            with Outbox().atomic() as outbox:
                call = self.calls.get(call_id)
                _check_answered(call, event_name.removeprefix("api."))
                if check is not None:
                    check(call)
                data = change(call)
                call.updated_at = utcnow()
                call.save()
                self.calls.note(call, SOURCE_API, event_name, data=data)
                notify(call, outbox)
            return call
        return retried(work)

    # ----- the call's end --------------------------------------------------
    def on_call_ended(self, call, outbox):
        """A call that ends on hold counts its last hold too (hook "ended")."""
        if call.held_at is not None:
            fold_hold(call)
            call.save()


def _check_answered(call, action):
    if call.status in cs.TERMINAL:
        raise Conflict(f"call {call.id} is {call.status}: it has ended, so it cannot "
                       f"{action}", error_id="call_not_live")
    if call.status != cs.IN_PROGRESS or not call.fs_uuid:
        raise Conflict(f"call {call.id} is {call.status}: only an answered call can {action}",
                       error_id="call_not_answered")


def _check_hold(call, want_held):
    if want_held and call.held_at is None:
        raise Conflict(f"call {call.id} is not on hold", error_id="call_not_on_hold")
    if not want_held and call.held_at is not None:
        raise Conflict(f"call {call.id} is on hold already", error_id="call_on_hold")


def _hold_leg(call):
    """The leg to hold: FreeSWITCH plays hold music to the partner of the held leg, so
    with an agent on the line the agent's leg is held and the customer hears the music;
    a customer alone (parked) is held directly."""
    return call.agent_leg_uuid or call.fs_uuid


def fold_hold(call):
    """Add the running hold to hold_seconds and clear held_at; returns the trail data."""
    if call.held_at is None:
        return {}
    held = max(0, int(round((utcnow() - call.held_at).total_seconds())))
    call.hold_seconds = (call.hold_seconds or 0) + held
    call.held_at = None
    return {"held_seconds": held, "hold_seconds": call.hold_seconds}


def _transferred(call, target):
    """The call now goes to the transfer target: its agent and agent leg are the new ones."""
    if target["agent_id"]:
        call.agent_id, call.agent_leg_uuid = target["agent_id"], target["leg"]
    else:
        call.agent_leg_uuid = None  # an outside number: no agent on the line any more
    if call.held_at is not None:
        fold_hold(call)  # a held customer leaves hold when transferred
    return {k: v for k, v in target.items() if v is not None}
