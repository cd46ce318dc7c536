"""Calls with an agent on the line: offering the agent, the agent's leg, bridges and handling times.

A call's row is the customer's leg (fs_uuid, status = the customer's experience);
the agent's leg (agent_leg_uuid) rings and hangs up on its own, and what it does
is kept in the trail (data.leg = "agent") and moves the agent's state.
"""
import logging

from freeswitch.esl.commands import bridge_in_command, bridge_originate_command
from models import utcnow
from models.call import (  # noqa: F401  (MODES: re-exported for the request schema)
    AGENT_FIRST,
    CUSTOMER_FIRST,
    LEG_AGENT,
    LEG_CONSULT,
    LEG_CUSTOMER,
    MODES,
)
from services.agents.endpoints import dial_string
from services.calls import state as cs
from services.errors import NotFound

logger = logging.getLogger(__name__)

SOURCE_FS = "freeswitch"
AGENT_NO_ANSWER = "agent-no-answer"
AGENT_BUSY = "agent-busy"
AGENT_FAILED = "agent-failed"
# Why an agent's leg did not come up -> the call's status_reason.
_AGENT_REASONS = {"NO_ANSWER": AGENT_NO_ANSWER, "NO_USER_RESPONSE": AGENT_NO_ANSWER,
                  "ALLOTTED_TIMEOUT": AGENT_NO_ANSWER, "PROGRESS_TIMEOUT": AGENT_NO_ANSWER,
                  "RECOVERY_ON_TIMER_EXPIRE": AGENT_NO_ANSWER, "USER_BUSY": AGENT_BUSY,
                  "CALL_REJECTED": AGENT_BUSY, "NORMAL_CIRCUIT_CONGESTION_BUSY": AGENT_BUSY,
                  "USER_NOT_REGISTERED": AGENT_FAILED}


def agent_failure_reason(cause):
    return _AGENT_REASONS.get((cause or "").upper(), AGENT_FAILED)


LEG_FORMER = "former"  # an agent leg the call no longer has (transferred away)


def leg_of(call, event):
    """Which leg of call a channel event came from: its cc_leg tag, else its uuid.

    An agent-tagged channel that is not the call's agent leg any more (the agent
    transferred the customer away) is a former leg: it moves neither the call nor
    the agent now on it.
    """
    tagged = event.get("variable_cc_leg")
    fs_uuid = event.get("Unique-ID")
    if tagged == LEG_AGENT and fs_uuid != call.agent_leg_uuid:
        return LEG_FORMER
    if tagged:
        return tagged
    if call.agent_leg_uuid and fs_uuid == call.agent_leg_uuid:
        return LEG_AGENT
    if call.consult_leg_uuid and fs_uuid == call.consult_leg_uuid:
        return LEG_CONSULT
    return LEG_CUSTOMER


def fill_handling_times(call):
    """At the call's end: ring, talk and hold seconds (handling-time figures).

    ring: from the customer's phone ringing (else the call's creation) until it was
    answered or gave up; talk: customer and agent bridged, minus time on hold.
    """
    end = call.ended_at or utcnow()
    if call.held_at is not None:
        call.hold_seconds = (call.hold_seconds or 0) + _seconds(call.held_at, end)
        call.held_at = None
    if call.ring_seconds is None:
        call.ring_seconds = _seconds(call.ringing_at or call.created_at, call.answered_at or end)
    if call.talk_seconds is None and call.bridged_at is not None:
        call.talk_seconds = max(0, _seconds(call.bridged_at, end) - (call.hold_seconds or 0))


def _seconds(start, end):
    return max(0, int((end - start).total_seconds())) if start and end else 0


class CallBridging:
    """What the calls service does for calls with an agent (agents: an AgentService)."""

    def __init__(self, calls, agents):
        self.calls = calls
        self.agents = agents

    # ----- starting ------------------------------------------------------
    def agent_and_mode(self, args):
        """(the agent resource a start names, its mode); (None, None) for no agent or a
        free-form agent id (the call parks as before). Naming a mode makes an unknown
        agent a 404."""
        agent_id, mode = args.get("agent_id"), args.get("mode")
        if not agent_id:
            if mode:
                raise NotFound("mode needs an agent_id", error_id="agent_not_found")
            return None, None
        try:
            agent = self.agents.get(agent_id)
        except NotFound:
            if mode:
                raise
            return None, None
        return agent, mode or AGENT_FIRST

    def node_for(self, agent):
        """The node for a new call: with several nodes, one where the agent on the line has
        its phone registered when that is known (its leg is rung there), else by load."""
        nodes = self.calls.commands
        if agent is None or len(nodes.names) == 1:
            return nodes.pick()
        return nodes.pick(among=self.agents.phones.nodes_with(agent.endpoint))

    def place(self, call, agent, timeout):
        """Send the originate of a call with an agent: the agent first (one originate
        with &bridge), or the customer first (parked; the agent is bridged in when the
        customer answers). Raises as FreeSwitchCommands.originate does."""
        commands = self.calls.commands.commands_for(call)  # the call's node
        customer = commands.dialstring(call.to_number, call.gateway)
        if call.mode == CUSTOMER_FIRST:
            command = commands.originate_command(call.fs_uuid, call.id, customer,
                                                 caller_id=call.caller_id, timeout=timeout,
                                                 extra_vars={"cc_leg": LEG_CUSTOMER})
        else:
            command = bridge_originate_command(
                call.id, call.agent_leg_uuid, dial_string(agent.endpoint), call.fs_uuid,
                customer, caller_id=call.caller_id, agent_timeout=timeout,
                customer_timeout=timeout)
        return commands.bgapi(command, job_uuid=call.fs_job_uuid)

    # ----- the agent's leg -----------------------------------------------
    def agent_leg_event(self, call, event_name, outbox, at=None, data=None):
        """Any event of the agent's leg: kept in the trail with its leg."""
        self.calls.note(call, SOURCE_FS, event_name, at=at,
                        data={"leg": LEG_AGENT, **(data or {})})

    def agent_failed(self, call, cause, outbox, at=None, event_name="BACKGROUND_JOB"):
        """The agent's leg did not come up (rang out, busy, rejected).

        Agent first: the customer was never dialled; the call fails with the reason.
        Customer first: the customer's call goes on to its own end; the reason is kept.
        The agent is paused (no-answer) when it rang out, else available again.
        """
        reason = agent_failure_reason(cause)
        if reason == AGENT_NO_ANSWER:
            self.agents.missed(call.agent_id, call.id)
        else:
            self.agents.released(call.agent_id, call.id)
        if call.mode == AGENT_FIRST and call.status == cs.INITIATED:
            return self.calls.transition(call, cs.FAILED, SOURCE_FS, event_name, outbox, at=at,
                                         data={"leg": LEG_AGENT, "cause": cause},
                                         hangup_cause=(cause or "")[:64], status_reason=reason)
        if call.status_reason is None:
            call.status_reason = reason
            call.save()
        return False

    def agent_hung_up(self, call, cause, answered, outbox, at=None):
        """The agent's leg ended: before answering it is a failed offer; after, the agent
        is released (wrap-up when it was bridged)."""
        self.agent_leg_event(call, "CHANNEL_HANGUP_COMPLETE", outbox, at=at,
                             data={"cause": cause})
        if not answered and call.bridged_at is None:
            return self.agent_failed(call, cause, outbox, at=at,
                                     event_name="CHANNEL_HANGUP_COMPLETE")
        self.agents.released(call.agent_id, call.id)
        return False

    # ----- bridges -------------------------------------------------------
    def bridged(self, call, a_uuid, b_uuid, outbox, at=None):
        """Customer and agent talk: bridged_at, the trail, the agent on-call."""
        at = at or utcnow()
        if call.bridged_at is None:
            call.bridged_at = at
            call.updated_at = utcnow()
            call.save()
            self.calls.notifier.call_updated(call, outbox)
        self.calls.note(call, SOURCE_FS, "CHANNEL_BRIDGE", at=at,
                        data={"leg": LEG_AGENT, "a": a_uuid, "b": b_uuid})
        if call.agent_id:
            self.agents.connected(call.agent_id, call.id)

    def unbridged(self, call, a_uuid, b_uuid, outbox, at=None):
        self.calls.note(call, SOURCE_FS, "CHANNEL_UNBRIDGE", at=at,
                        data={"leg": LEG_AGENT, "a": a_uuid, "b": b_uuid})

    def customer_answered(self, call, outbox):
        """Customer first: the customer answered; bridge the agent in (after the commit)."""
        if call.mode != CUSTOMER_FIRST or not call.agent_leg_uuid or call.bridged_at:
            return
        agent = self.agents.get(call.agent_id)
        command = bridge_in_command(
            call.fs_uuid, call.id, call.agent_leg_uuid, dial_string(agent.endpoint),
            agent_timeout=self.calls.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45))
        outbox.add(self._send, call.id, command, call.node)

    def _send(self, call_id, command, node=None):
        try:
            reply = self.calls.commands.on(node).api(command)
        except Exception as exc:  # the customer's leg stays parked; hang-up ends it
            logger.warning("call %s: bridging the agent failed: %s", call_id, exc)
            return
        if reply.strip().startswith("-ERR"):
            logger.warning("call %s: bridging the agent refused: %s", call_id, reply.strip())

    # ----- the end -------------------------------------------------------
    def call_ended(self, call, outbox):
        """Hook on every ended call: its agent is released (wrap-up, or available again
        when the call never reached them)."""
        if call.agent_id and (call.mode or call.agent_leg_uuid):
            self.agents.released(call.agent_id, call.id)

    def legs_of(self, call):
        """Every leg uuid the call may have up (customer, agent, consult)."""
        return [u for u in (call.fs_uuid, call.agent_leg_uuid, call.consult_leg_uuid) if u]
