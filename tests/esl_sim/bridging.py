"""Two-leg calls in the ESL simulator: agent-first originate with &bridge, and uuid_transfer to
`bridge:` (customer first, blind transfers), as the real switch sent them.

Sources (tests/fixtures/esl/):
  22_bridge_agent_first_answered       agent CREATE, ANSWER, BACKGROUND_JOB +OK, customer CREATE
                                       (Channel-Call-UUID = the agent's), ANSWER, CHANNEL_BRIDGE on the
                                       agent (Bridge-A = agent, Bridge-B = customer); a kill gives
                                       UNBRIDGE (agent), HANGUP_COMPLETE agent, then customer
  22_bridge_agent_first_customer_busy  ... customer CREATE, HANGUP_COMPLETE customer, then agent (the
                                       customer's cause: FreeSWITCH hangs the agent up with it)
  22_bridge_agent_first_agent_noanswer agent CREATE, PROGRESS, BACKGROUND_JOB -ERR NO_ANSWER,
                                       HANGUP_COMPLETE NO_ANSWER; the customer is never created
  22_call_control_transfer_inline      new leg CREATE (Channel-Call-UUID = the transferred leg's),
                                       ANSWER, CHANNEL_BRIDGE on the transferred leg; a kill of the new
                                       leg gives its HANGUP_COMPLETE, UNBRIDGE, the other's HANGUP_COMPLETE
Only the events those captures subscribed to are sent for these legs (no CHANNEL_STATE & co).
Invented (no capture): a phone that is busy or rejects (HANGUP_COMPLETE with USER_BUSY /
CALL_REJECTED, then the -ERR, the order of the captured busy originate), a customer leg that rings
out (the busy sequence with NO_ANSWER), and the customer's hang-up when the agent of a transfer
does not answer (with the agent's cause).

A directory user (`user/NNNN`) rings only when registered (sim.phones; else -ERR
USER_NOT_REGISTERED) and does what the global `farend_phone_NNNN` says, as on the real rig:
answer (default), noanswer, busy, reject.
"""
import re
import time
import uuid as uuidlib
from types import SimpleNamespace

import gevent

from tests.esl_sim import templates as T
from tests.esl_sim import transcripts as tr

ANSWERED = "22_bridge_agent_first_answered"
BUSY = "22_bridge_agent_first_customer_busy"
NOANSWER = "22_bridge_agent_first_agent_noanswer"
TRANSFER = "22_call_control_transfer_inline"

PHONE_CAUSES = {"busy": "USER_BUSY", "reject": "CALL_REJECTED", "noanswer": "NO_ANSWER"}
FAILED_CUSTOMER = {"busy": "USER_BUSY", "no_answer": "NO_ANSWER",
                   "unavailable": "NORMAL_TEMPORARY_FAILURE"}


class CapturedLeg:
    """The events of one leg of a capture, by name (first of each), with the values of that leg
    (tokens, for the render) and of the capture's other values to replace (peer uuid & co)."""

    def __init__(self, source, events, uuid, dial_vars):
        create = next(e for e in events if e.get("Unique-ID") == uuid)
        channel_name = create.get("Channel-Name")
        profile = channel_name.split("/")[1]
        userhost = channel_name.split("/", 2)[2]
        if "@" not in userhost:
            userhost = create.get("variable_sip_req_uri") or userhost
        user, _, hostport = userhost.partition("@")
        self.uuid = uuid
        self.channel_name = channel_name
        self.tokens = SimpleNamespace(
            uuid=uuid, dest=create.get("Caller-Destination-Number"),
            cid=create.get("Caller-Caller-ID-Number"), hostport=hostport,
            port=hostport.rpartition(":")[2] if ":" in hostport else "",
            userhost=userhost, channel_name=channel_name, dial_vars=dial_vars, profile=profile,
            setvar_names=[])
        self.events = {}
        for i, event in enumerate(events):
            if event.get("Unique-ID") == uuid and event.name not in self.events:
                self.events[event.name] = T.Template(event, source, i, self.tokens)

    def __getitem__(self, name):
        return self.events[name]


def _client_lines(source):
    chunks = tr.parse_capture(tr.fixture_path(source + ".capture").read_bytes())
    return [c.data.decode() for c in chunks if c.direction == tr.CLIENT]


def _var_names(block):
    return [item.partition("=")[0] for item in block.split(",") if item]


def _load_bridge(source):
    """(agent CapturedLeg, customer CapturedLeg or None, captured call id) of an agent-first capture."""
    events = [e for _, e in tr.capture_events(source)]
    line = next(x for x in _client_lines(source) if x.startswith("bgapi originate"))
    blocks = re.findall(r"\{([^}]*)\}", line)
    agent_vars, customer_vars = dict(i.split("=", 1) for i in blocks[0].split(",")), \
        dict(i.split("=", 1) for i in blocks[1].split(","))
    agent = CapturedLeg(source, events, agent_vars["origination_uuid"], _var_names(blocks[0]))
    customer_uuid = customer_vars["origination_uuid"]
    customer = None
    if any(e.get("Unique-ID") == customer_uuid for e in events):
        customer = CapturedLeg(source, events, customer_uuid, _var_names(blocks[1]))
    return agent, customer, agent_vars["cc_call_id"]


def _load_transfer():
    events = [e for _, e in tr.capture_events(TRANSFER)]
    lines = _client_lines(TRANSFER)
    originate = next(x for x in lines if x.startswith("bgapi originate"))
    transfer = next(x for x in lines if x.startswith("api uuid_transfer"))
    held, new = re.findall(r"\{([^}]*)\}", originate)[0], re.findall(r"\{([^}]*)\}", transfer)[0]
    held_uuid = dict(i.split("=", 1) for i in held.split(","))["origination_uuid"]
    new_uuid = dict(i.split("=", 1) for i in new.split(","))["origination_uuid"]
    return (CapturedLeg(TRANSFER, events, held_uuid, _var_names(held)),
            CapturedLeg(TRANSFER, events, new_uuid, _var_names(new)))


_CACHE = {}


def captured():
    """The captured legs, loaded once: .agent/.customer (answered), .busy_agent/.busy_customer,
    .noanswer_agent, .held/.new (transfer), .call_ids."""
    if not _CACHE:
        agent, customer, call_id = _load_bridge(ANSWERED)
        busy_agent, busy_customer, busy_call = _load_bridge(BUSY)
        noanswer_agent, _, noanswer_call = _load_bridge(NOANSWER)
        held, new = _load_transfer()
        _CACHE["legs"] = SimpleNamespace(
            agent=agent, customer=customer, busy_agent=busy_agent, busy_customer=busy_customer,
            noanswer_agent=noanswer_agent, held=held, new=new,
            call_ids=[call_id, busy_call, noanswer_call])
    return _CACHE["legs"]


class Bridge:
    """Two bridged channels: a (the leg the CHANNEL_BRIDGE is on) and b; kind 'originate'
    (agent first) or 'transfer' (uuid_transfer ... bridge:)."""

    def __init__(self, kind, a, b):
        self.kind, self.a, self.b = kind, a, b

    def other(self, ch):
        return self.b if ch is self.a else self.a


class BridgingMixin:
    """The ESLSimulator's two-leg calls (see the module docstring)."""

    # ----- phones ----------------------------------------------------------
    def phone_behaviour(self, user):
        """What directory user `user`'s phone does when it rings (farend_phone_<user>)."""
        if user not in self.phones:
            return "unregistered"
        value = self.global_vars.get(f"farend_phone_{user}", "answer").strip().lower()
        return value if value in ("answer", "noanswer", "busy", "reject") else "answer"

    # ----- rendering -------------------------------------------------------
    def _emit_leg(self, template, ch, captured_leg, peer=None, captured_peer=None, call_uuid=None):
        """Emit a captured event of captured_leg as channel ch's; the capture's peer leg values
        (uuid, channel name, call id, phone number) become peer's, Channel-Call-UUID call_uuid."""
        overrides = {}
        if call_uuid is not None:
            overrides = {"Channel-Call-UUID": call_uuid, "variable_call_uuid": call_uuid}
        headers = T.render(template, self._context(), ch, overrides=overrides)
        swaps = self._swaps(ch, peer, captured_leg, captured_peer)
        if swaps:
            pattern = re.compile("|".join(re.escape(k) for k in sorted(swaps, key=len, reverse=True)))
            headers = [(k, pattern.sub(lambda m: swaps[m.group(0)], v)) if pattern.search(v) else (k, v)
                       for k, v in headers]
        for k, v in headers:
            if k == "Channel-State":
                ch.state = v
            elif k == "Channel-Call-State":
                ch.callstate = v
            elif k == "Answer-State":
                ch.answer_state = v
        return self._emit_headers(headers, template.body)

    @staticmethod
    def _swaps(ch, peer, captured_leg, captured_peer):
        legs = captured()
        swaps = {}
        call_id = ch.dial_vars.get("cc_call_id") or (peer.dial_vars.get("cc_call_id") if peer else None)
        if call_id:
            swaps.update({c: call_id for c in legs.call_ids})
        if peer is not None and captured_peer is not None:
            swaps[captured_peer.uuid] = peer.uuid
            swaps[captured_peer.channel_name] = peer.channel_name
        for leg_ch in (ch, peer):
            user = getattr(leg_ch, "phone_user", None)
            if user:
                swaps.update({"phone1001": f"phone{user}", "phone-1001": f"phone-{user}",
                              "Agent 1001": f"Agent {user}", "1001@": f"{user}@"})
        swaps.pop(ch.uuid, None)
        return swaps

    # ----- agent first -----------------------------------------------------
    def _agent_first_flow(self, agent, bridge_arg):
        """originate {..}user/N &bridge({..}customer): ring the agent, then the customer, bridge."""
        legs = captured()
        try:
            self._emit_leg(legs.agent["CHANNEL_CREATE"], agent, legs.agent)
            behaviour = self.phone_behaviour(agent.phone_user)
            if behaviour != "answer":
                self._phone_fails(agent, behaviour)
                return
            self._sleep(self.ANSWER_DELAY_S)
            agent.answered_us = agent.progress_us = _now_us()
            self._emit_leg(legs.agent["CHANNEL_ANSWER"], agent, legs.agent)
            self._originate_done(agent, f"+OK {agent.uuid}\n")
            if bridge_arg is None:  # `&park()`: the answered leg parks (tests/esl_sim/queues.py)
                return
            customer = self._new_leg(bridge_arg, agent)
            if customer is None:
                self._hangup_pair_unanswered(agent, None, "NORMAL_TEMPORARY_FAILURE")
                return
            agent.partner = customer
            self._emit_leg(legs.customer["CHANNEL_CREATE"], customer, legs.customer, agent, legs.agent,
                           call_uuid=agent.uuid)
            cause = FAILED_CUSTOMER.get(customer.scenario)
            if cause is not None:
                self._sleep(self.NO_ANSWER_S if cause == "NO_ANSWER" else self.BUSY_S)
                self._hangup_pair_unanswered(agent, customer, cause)
                return
            self._sleep(self.ANSWER_DELAY_S)
            customer.answered_us = customer.progress_us = _now_us()
            self._emit_leg(legs.customer["CHANNEL_ANSWER"], customer, legs.customer, agent, legs.agent,
                           call_uuid=agent.uuid)
            self._bridge(Bridge("originate", agent, customer))
            if customer.scenario == "remote_hangup":
                self._sleep(self.REMOTE_HANGUP_S)
                self._hangup(customer, "NORMAL_CLEARING", local=False)
        except gevent.GreenletExit:
            pass

    def _phone_fails(self, ch, behaviour):
        """The phone does not answer (rings out), is busy, rejects or is not registered."""
        legs = captured()
        cause = PHONE_CAUSES.get(behaviour, "USER_NOT_REGISTERED")
        if behaviour == "noanswer":
            ch.progress_us = _now_us()
            self._emit_leg(legs.noanswer_agent["CHANNEL_PROGRESS"], ch, legs.noanswer_agent)
            self._sleep(self.NO_ANSWER_S)
        else:
            self._sleep(self.BUSY_S)
        ch.hangup_cause, ch.hangup_us = cause, _now_us()
        if behaviour == "noanswer":
            self._originate_done(ch, f"-ERR {cause}\n")
            self._emit_leg(legs.noanswer_agent["CHANNEL_HANGUP_COMPLETE"], ch, legs.noanswer_agent)
        else:
            self._emit_leg(legs.noanswer_agent["CHANNEL_HANGUP_COMPLETE"], ch, legs.noanswer_agent)
            self._originate_done(ch, f"-ERR {cause}\n")
        self._forget_channel(ch)

    def _hangup_pair_unanswered(self, agent, customer, cause):
        """The customer's leg failed: its HANGUP_COMPLETE, then the agent's with the same cause."""
        legs = captured()
        now = _now_us()
        if customer is not None:
            customer.hangup_cause, customer.hangup_us = cause, now
            self._emit_leg(legs.busy_customer["CHANNEL_HANGUP_COMPLETE"], customer, legs.busy_customer,
                           agent, legs.busy_agent, call_uuid=agent.uuid)
            self._forget_channel(customer)
        agent.hangup_cause, agent.hangup_us = cause, now
        self._finish_rtp(agent)
        self._emit_leg(legs.busy_agent["CHANNEL_HANGUP_COMPLETE"], agent, legs.busy_agent)
        self._forget_channel(agent)

    def _new_leg(self, target, origin):
        """A channel for `{vars}dialstring` started by origin's session (None: cannot be dialled)."""
        dial_vars, dialstring = self._parse_dial(target)
        where = self._dial_target(dialstring)
        if where.error is not None:
            return None
        uuid = dial_vars.get("origination_uuid") or str(uuidlib.uuid4())
        cid = dial_vars.get("origination_caller_id_number") or origin.cid
        scenario = "phone" if where.tech == "user" else self.scenario_of(where.user)
        ch = self._make_channel(uuid, where, cid, dial_vars, scenario)
        ch.flow = origin.flow
        return ch

    # ----- bridges ---------------------------------------------------------
    def _bridge(self, bridge):
        legs = captured()
        bridge.a.bridge = bridge.b.bridge = bridge
        bridge.a.partner, bridge.b.partner = bridge.b, bridge.a
        if bridge.kind == "originate":
            self._emit_leg(legs.agent["CHANNEL_BRIDGE"], bridge.a, legs.agent, bridge.b, legs.customer)
        else:
            self._emit_leg(legs.held["CHANNEL_BRIDGE"], bridge.a, legs.held, bridge.b, legs.new)

    def _unbridge(self, bridge):
        legs = captured()
        bridge.a.bridge = bridge.b.bridge = None
        if bridge.kind == "originate":
            self._emit_leg(legs.agent["CHANNEL_UNBRIDGE"], bridge.a, legs.agent, bridge.b, legs.customer)
        else:
            self._emit_leg(legs.held["CHANNEL_UNBRIDGE"], bridge.a, legs.held, bridge.b, legs.new)

    def _hangup_bridged(self, ch, cause, local):
        """One leg of a bridge hangs up: the bridge ends and the other leg hangs up too."""
        bridge = ch.bridge
        other = bridge.other(ch)
        for leg in (ch, other):
            if leg.flow is not None and not leg.flow.dead and leg.flow is not gevent.getcurrent():
                leg.flow.kill(block=False)
            leg.hangup_cause, leg.hangup_us = cause, _now_us()
            self._finish_rtp(leg)
        ch.disposition = None if local else "recv_bye"
        legs = captured()
        if bridge.kind == "originate":
            self._unbridge(bridge)
            agent, customer = legs.agent, legs.customer
            if ch is bridge.a:  # the agent's leg was killed (consult.py has that capture)
                agent, customer = self._agent_killed_legs()
            order = [(bridge.a, agent, bridge.b, customer, None),
                     (bridge.b, customer, bridge.a, agent, bridge.b.uuid)]
        else:
            order = [(ch, *self._transfer_roles(bridge, ch)), None,
                     (other, *self._transfer_roles(bridge, other))]
        for item in order:
            if item is None:
                self._unbridge(bridge)
                continue
            leg, cap, peer, cap_peer, call_uuid = item
            self._emit_leg(cap["CHANNEL_HANGUP_COMPLETE"], leg, cap, peer, cap_peer, call_uuid=call_uuid)
            self._stop_recordings(leg, emit=False)
            self._forget_channel(leg)

    @staticmethod
    def _transfer_roles(bridge, leg):
        legs = captured()
        if leg is bridge.a:
            return legs.held, bridge.b, legs.new, None
        return legs.new, bridge.a, legs.held, bridge.a.uuid

    # ----- uuid_transfer <uuid> [^^;]bridge:{..}dialstring inline --------------
    def _transfer_to_bridge(self, ch, target):
        """The leg leaves its park or bridge and bridges to a new leg it originates."""
        if ch.bridge is not None:  # the old partner's bridge ends and it hangs up
            old = ch.bridge.other(ch)
            self._unbridge(ch.bridge)
            old.bridge = None
            self._hangup(old, "NORMAL_CLEARING", local=True)
        if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
            ch.flow.kill(block=False)
        ch.flow = gevent.spawn(self._transfer_flow, ch, target)

    # ----- uuid_transfer <uuid> park inline (a blind transfer into a queue) -----
    def _transfer_to_park(self, ch):
        """The leg leaves its bridge (the partner, which has nothing else to do, hangs up)
        and parks, answered, until the service bridges it again."""
        if ch.bridge is not None:
            old = ch.bridge.other(ch)
            self._unbridge(ch.bridge)
            old.bridge = None
            old.partner = ch.partner = None  # the partner goes alone; ch stays up
            self._hangup(old, "NORMAL_CLEARING", local=True)
        ch.partner = None  # its own flow (an inbound call's life) goes on

    def _transfer_flow(self, ch, target):
        legs = captured()
        try:
            leg = self._new_leg(target, ch)
            if leg is None:
                self._hangup(ch, "NORMAL_TEMPORARY_FAILURE", local=True)
                return
            leg.flow = ch.flow
            ch.partner, leg.partner = leg, ch
            self._emit_leg(legs.new["CHANNEL_CREATE"], leg, legs.new, ch, legs.held, call_uuid=ch.uuid)
            if leg.scenario == "phone":
                behaviour = self.phone_behaviour(leg.phone_user)
                failed = None if behaviour == "answer" else PHONE_CAUSES.get(behaviour, "USER_NOT_REGISTERED")
            else:
                failed = FAILED_CUSTOMER.get(leg.scenario)
            if failed is not None:
                self._sleep(self.NO_ANSWER_S if failed == "NO_ANSWER" else self.BUSY_S)
                leg.hangup_cause, leg.hangup_us = failed, _now_us()
                self._emit_leg(legs.busy_customer["CHANNEL_HANGUP_COMPLETE"], leg, legs.busy_customer,
                               ch, legs.busy_agent, call_uuid=ch.uuid)
                self._forget_channel(leg)
                ch.partner = None
                self._hangup(ch, failed, local=True)
                return
            self._sleep(self.ANSWER_DELAY_S)
            leg.answered_us = leg.progress_us = _now_us()
            self._emit_leg(legs.new["CHANNEL_ANSWER"], leg, legs.new, ch, legs.held, call_uuid=ch.uuid)
            self._bridge(Bridge("transfer", ch, leg))
        except gevent.GreenletExit:
            pass



def _now_us():
    return int(time.time() * 1_000_000)
