"""Attended transfer (consult legs, uuid_bridge) and supervisor monitoring (&eavesdrop) in the ESL
simulator, as the real switch sent them.

Sources (tests/fixtures/esl/):
  23_consult_transfer_complete  A (agent) bridged to C (customer, park_after_bridge=true);
      uuid_transfer A '^^;set:..;bridge:{X}user/1002;park' inline: PARK on C, UNBRIDGE on A
      (no Other-Leg), X CREATE/ANSWER (Channel-Call-UUID = A's), BRIDGE on A (Bridge-B = X);
      uuid_bridge C X (+OK X): UNBRIDGE on A, PARK on A, BRIDGE on C (Channel-Call-UUID now C's,
      Bridge-A = C, Bridge-B = X; X's later events carry C as call uuid); uuid_kill A (parked):
      its HANGUP_COMPLETE alone; uuid_kill C: X's HANGUP_COMPLETE, UNBRIDGE on C, C's.
  23_monitor_eavesdrop  bgapi originate {M}user/1003 &eavesdrop(A): M CREATE, ANSWER,
      BACKGROUND_JOB +OK M, CHANNEL_EXECUTE eavesdrop on M; uuid_recv_dtmf M d
      (+OK M received DTMF d.) gives a DTMF event on M; uuid_kill M: its HANGUP_COMPLETE.
Invented (no capture): a consult leg that hangs up while bridged to the agent (X's
HANGUP_COMPLETE, UNBRIDGE and PARK on the agent's leg, which stays: hangup_after_bridge=false
and `park` after the bridge), uuid_bridge of two parked legs (cancel: BRIDGE on the first),
a leg that parks instead of hanging up when its bridge partner goes (park_after_bridge), a
consult phone that fails (its HANGUP_COMPLETE, then PARK on the agent's leg), and an eavesdrop
that ends when the leg it listens to goes. `endless_playback` (hold music) sends no events here:
none of the captures subscribed to them.
"""
import re
import time

import gevent

from tests.esl_sim import templates as T
from tests.esl_sim import transcripts as tr
from tests.esl_sim.bridging import FAILED_CUSTOMER, PHONE_CAUSES, CapturedLeg, _client_lines

CONSULT = "23_consult_transfer_complete"
MONITOR = "23_monitor_eavesdrop"
# eavesdrop's DTMF controls (mod_dptools): 2 speaks with the leg listened to, 3 with both, 0 listens
EAVESDROP_MODES = {"2": "whisper", "3": "barge", "0": "listen"}


class NthLeg(CapturedLeg):
    """A CapturedLeg that also keeps every occurrence: leg[name, n] is the n-th `name` event."""

    def __init__(self, source, events, uuid, dial_vars, setvar_names=()):
        super().__init__(source, events, uuid, dial_vars)
        # variables set on the live leg (uuid_setvar, set:) take their captured slot
        self.tokens.setvar_names = list(setvar_names)
        self.nth = {}
        counts = {}
        for i, event in enumerate(events):
            if event.get("Unique-ID") == uuid:
                n = counts[event.name] = counts.get(event.name, -1) + 1
                self.nth[(event.name, n)] = T.Template(event, source, i, self.tokens)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self.nth[key]
        return self.events[key]


def _uuid_of(line, marker):
    """origination_uuid of the {..} block that follows marker in a client line."""
    block = re.search(re.escape(marker) + r"\{([^}]*)\}", line).group(1)
    return dict(i.split("=", 1) for i in block.split(","))["origination_uuid"], \
        [i.partition("=")[0] for i in block.split(",")]


_CACHE = {}


def consult_legs():
    """The captured legs, loaded once: .agent (A), .customer (C), .consult (X), .monitor (M),
    .monitored/.monitored_customer (A and C of the monitor capture, where A was killed)."""
    if not _CACHE:
        events = [e for _, e in tr.capture_events(CONSULT)]
        lines = _client_lines(CONSULT)
        originate = next(x for x in lines if x.startswith("api originate"))
        transfer = next(x for x in lines if x.startswith("api uuid_transfer"))
        (a, a_vars), (c, c_vars) = _uuid_of(originate, "originate "), _uuid_of(originate, "&bridge(")
        x, x_vars = _uuid_of(transfer, "bridge:")
        c_set = [x.split()[3] for x in lines if x.startswith(f"api uuid_setvar {c} ")]
        a_set = re.findall(r"set:([^=;]+)=", transfer)
        m_events = [e for _, e in tr.capture_events(MONITOR)]
        m_line = next(x for x in _client_lines(MONITOR) if x.startswith("bgapi originate"))
        m, m_vars = _uuid_of(m_line, "bgapi originate ")
        m_bridge = next(x for x in _client_lines(MONITOR) if x.startswith("api originate"))
        (ma, ma_vars), (mc, mc_vars) = (_uuid_of(m_bridge, "originate "),
                                        _uuid_of(m_bridge, "&bridge("))
        _CACHE.update(agent=NthLeg(CONSULT, events, a, a_vars, a_set),
                      customer=NthLeg(CONSULT, events, c, c_vars, c_set),
                      consult=NthLeg(CONSULT, events, x, x_vars),
                      monitor=NthLeg(MONITOR, m_events, m, m_vars),
                      monitored=NthLeg(MONITOR, m_events, ma, ma_vars),
                      monitored_customer=NthLeg(MONITOR, m_events, mc, mc_vars))
    return type("Legs", (), _CACHE)


class ConsultBridge:
    """Two legs joined by the consult (kind 'consult': a = the agent's leg, b = the consult leg)
    or by uuid_bridge (kind 'uuid_bridge': a = the first uuid named)."""

    def __init__(self, kind, a, b):
        self.kind, self.a, self.b = kind, a, b

    def other(self, ch):
        return self.b if ch is self.a else self.a


class ConsultMixin:
    """The ESLSimulator's consult legs, uuid_bridge and eavesdrop (see the module docstring)."""

    # ----- rendering -------------------------------------------------------
    def _emit_cap(self, template, ch, peers=(), overrides=None):
        """Emit a captured event as ch's: the captured uuids and channel names of peers
        ((channel, captured leg) pairs) become those channels'; Channel-Call-UUID is ch's."""
        call_uuid = getattr(ch, "call_uuid", None) or ch.uuid
        values = {"Channel-Call-UUID": call_uuid, "variable_call_uuid": call_uuid,
                  **(overrides or {})}
        headers = T.render(template, self._context(), ch, overrides=values)
        swaps = {}
        for peer, cap in peers:
            swaps[cap.uuid], swaps[cap.channel_name] = peer.uuid, peer.channel_name
        swaps.pop(ch.uuid, None)
        if swaps:
            pattern = re.compile("|".join(re.escape(k) for k in sorted(swaps, key=len, reverse=True)))
            headers = [(k, pattern.sub(lambda m: swaps[m.group(0)], v)) for k, v in headers]
        for k, v in headers:
            if k == "Channel-State":
                ch.state = v
            elif k == "Channel-Call-State":
                ch.callstate = v
            elif k == "Answer-State":
                ch.answer_state = v
        return self._emit_headers(headers, template.body)

    @staticmethod
    def _cap_of(ch):
        """The captured leg whose events ch's are rendered from (by its role)."""
        legs = consult_legs()
        role = getattr(ch, "consult_role", None)
        if role is not None:
            return getattr(legs, role)
        return legs.customer if ch.dial_vars.get("cc_leg") == "customer" else legs.agent

    @staticmethod
    def _agent_killed_legs():
        """The captured (agent, customer) legs of an agent-first bridge whose agent's leg was
        killed (23_monitor_eavesdrop: the killed leg carries last_bridge_role, the other
        last_bridge_hangup_cause; 22_bridge_agent_first_answered killed the customer)."""
        legs = consult_legs()
        return legs.monitored, legs.monitored_customer

    # ----- uuid_transfer A '^^;set:..;bridge:{X}dial;park' inline ---------------------
    def _transfer_app_list(self, ch, apps):
        """An inline application list: set: variables, then bridge: a new leg; `park` after."""
        target, variables = None, []
        for app in apps:
            name, _, arg = app.partition(":")
            if name == "set" and "=" in arg:
                variables.append(arg.partition("=")[::2])
            elif name == "bridge":
                target = arg
        ch.park_after = apps[-1] == "park"
        if ch.bridge is not None:  # the leg leaves its bridge before its new applications run
            self._leave_bridge(ch)
        for var, value in variables:
            self.set_variable(ch.uuid, var, value)
        if target is None:
            return
        if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
            ch.flow.kill(block=False)
        ch.flow = gevent.spawn(self._consult_flow, ch, target)

    def _leave_bridge(self, ch):
        """ch is moved away from its bridge: the partner parks (park_after_bridge) or hangs up."""
        legs = consult_legs()
        bridge = ch.bridge
        old = bridge.other(ch)
        if not _parks(old):  # as a blind transfer: the old partner hangs up
            if isinstance(bridge, ConsultBridge):
                self._end_bridge_quietly(bridge)
            else:
                self._unbridge(bridge)
            ch.bridge = old.bridge = ch.partner = old.partner = None
            self._hangup(old, "NORMAL_CLEARING", local=True)
            return
        old.call_uuid = getattr(old, "call_uuid", None) or bridge.a.uuid
        ch.call_uuid = getattr(ch, "call_uuid", None) or ch.uuid
        ch.bridge = old.bridge = None
        ch.partner = old.partner = None
        old.last_peer, old.consult_parked = (ch, legs.agent), True
        self._emit_cap(legs.customer["CHANNEL_PARK", 0], old, [old.last_peer])
        self._emit_cap(legs.agent["CHANNEL_UNBRIDGE", 0], ch, [(old, legs.customer)])

    def _consult_flow(self, ch, target):
        legs = consult_legs()
        try:
            leg = self._new_leg(target, ch)
            if leg is None:
                self._park(ch, getattr(ch, "last_peer", None))
                return
            leg.flow, leg.consult_role, leg.call_uuid = ch.flow, "consult", ch.uuid
            leg.consult_of = ch
            self._emit_cap(legs.consult["CHANNEL_CREATE"], leg, [(ch, legs.agent)])
            if leg.scenario == "phone":
                behaviour = self.phone_behaviour(leg.phone_user)
                failed = None if behaviour == "answer" else PHONE_CAUSES.get(behaviour, "USER_NOT_REGISTERED")
            else:
                failed = FAILED_CUSTOMER.get(leg.scenario)
            if failed is not None:
                self._sleep(self.NO_ANSWER_S if failed == "NO_ANSWER" else self.BUSY_S)
                leg.hangup_cause, leg.hangup_us = failed, _now_us()
                self._emit_cap(legs.consult["CHANNEL_HANGUP_COMPLETE"], leg, [(ch, legs.customer)],
                               overrides={"Hangup-Cause": failed})
                self._forget_channel(leg)
                self._park(ch, (leg, legs.consult))
                return
            self._sleep(self.ANSWER_DELAY_S)
            leg.answered_us = leg.progress_us = _now_us()
            self._emit_cap(legs.consult["CHANNEL_ANSWER"], leg, [(ch, legs.agent)])
            self._join(ConsultBridge("consult", ch, leg), legs.agent["CHANNEL_BRIDGE", 1], legs.consult)
        except gevent.GreenletExit:
            pass

    def _join(self, bridge, template, b_cap):
        bridge.a.bridge = bridge.b.bridge = bridge
        bridge.a.partner, bridge.b.partner = bridge.b, bridge.a
        self._emit_cap(template, bridge.a, [(bridge.b, b_cap)])

    def _park(self, ch, peer):
        """ch's bridge with peer ((channel, captured leg) or None) is over and ch parks: the
        consult's `park`, park_after_bridge. Its later events name peer as the other leg."""
        legs = consult_legs()
        ch.partner = None
        ch.last_peer, ch.consult_parked = peer, True
        self._emit_cap(legs.agent["CHANNEL_PARK", 0], ch, [peer] if peer else [])

    # ----- uuid_bridge <a> <b> ------------------------------------------------
    def _api_uuid_bridge(self, arg):
        parts = arg.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <other_uuid>\n"
        a, b = self._channel_for(parts[0]), self._channel_for(parts[1])
        if a is None or b is None:
            return "-ERR no such channel\n"
        legs = consult_legs()
        for ch in (a, b):
            if ch.bridge is not None:  # b leaves the agent it consulted with: the agent parks
                old = ch.bridge.other(ch)
                self._end_bridge_quietly(ch.bridge)
                self._emit_cap(legs.agent["CHANNEL_UNBRIDGE", 1], old, [(ch, legs.consult)])
                self._park(old, (ch, legs.consult))
        a.call_uuid = a.uuid
        b.call_uuid = a.uuid
        template = legs.customer["CHANNEL_BRIDGE", 0] if _role(a) == "customer" \
            else legs.agent["CHANNEL_BRIDGE", 0]
        self._join(ConsultBridge("uuid_bridge", a, b), template, self._cap_of(b))
        return f"+OK {b.uuid}\n"

    @staticmethod
    def _end_bridge_quietly(bridge):
        bridge.a.bridge = bridge.b.bridge = None
        bridge.a.partner = bridge.b.partner = None

    # ----- a leg of a consult / uuid_bridge bridge hangs up --------------------
    def _hangup_consult_bridged(self, ch, cause, local):
        """As captured for uuid_bridge: b's HANGUP_COMPLETE, UNBRIDGE on a, then a's; a leg
        that parks after a bridge (park_after_bridge, the consult's `park`) stays."""
        legs = consult_legs()
        bridge = ch.bridge
        a, b = bridge.a, bridge.b
        self._end_bridge_quietly(bridge)
        for leg in (a, b):
            if leg.flow is not None and not leg.flow.dead and leg.flow is not gevent.getcurrent():
                leg.flow.kill(block=False)
        ch.disposition = None if local else "recv_bye"
        stays = [leg for leg in (a, b) if leg is not ch and _parks(leg)]
        if b not in stays:
            self._hangup_captured(b, cause, [(a, self._cap_of(a))])
        unbridge = legs.customer["CHANNEL_UNBRIDGE", 0] if _role(a) == "customer" \
            else legs.agent["CHANNEL_UNBRIDGE", 1]
        self._emit_cap(unbridge, a, [(b, self._cap_of(b))])
        if a in stays:
            self._park(a, (b, self._cap_of(b)))
        else:
            self._hangup_captured(a, cause, [(b, self._cap_of(b))])
        if b in stays:
            self._park(b, (a, self._cap_of(a)))

    def _hangup_captured(self, ch, cause, peers=()):
        """The HANGUP_COMPLETE of a consult-capture leg (parked, bridged or a monitor)."""
        if ch.ended:
            return
        if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
            ch.flow.kill(block=False)
        ch.hangup_cause, ch.hangup_us = cause, _now_us()
        if ch.answered_us:
            self._finish_rtp(ch)
        peers = peers or ([ch.last_peer] if getattr(ch, "last_peer", None) else [])
        self._emit_cap(self._cap_of(ch)["CHANNEL_HANGUP_COMPLETE"], ch, peers,
                       overrides={"Hangup-Cause": cause})
        self._stop_recordings(ch, emit=False)
        self._forget_channel(ch)

    def _consult_leg_hangup(self, ch, cause, local):
        """A leg the consult parked, an answered monitor leg or a ringing consult leg hangs up
        (not bridged): True when handled here."""
        role = getattr(ch, "consult_role", None)
        if ch.answered and (getattr(ch, "consult_parked", False) or role == "monitor"):
            ch.partner = None
            ch.disposition = None if local else "recv_bye"
            self._hangup_captured(ch, cause)
            return True
        if role == "consult" and not ch.answered:  # cancelled while ringing: the agent parks
            agent = ch.consult_of
            if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
                ch.flow.kill(block=False)
            ch.hangup_cause, ch.hangup_us = cause, _now_us()
            legs = consult_legs()
            self._emit_cap(legs.consult["CHANNEL_HANGUP_COMPLETE"], ch, [(agent, legs.customer)],
                           overrides={"Hangup-Cause": cause})
            self._forget_channel(ch)
            if not agent.ended:
                self._park(agent, (ch, legs.consult))
            return True
        return False

    # ----- monitor: originate {M}user/N &eavesdrop(<uuid>) --------------------------
    def _eavesdrop_flow(self, ch, target_uuid):
        legs = consult_legs()
        ch.consult_role, ch.eavesdrop_target, ch.eavesdrop_mode = "monitor", target_uuid, "listen"
        if ch.dial_vars.get("eavesdrop_whisper_aleg") == "true":
            ch.eavesdrop_mode = "barge" if ch.dial_vars.get("eavesdrop_whisper_bleg") == "true" \
                else "whisper"
        try:
            self._emit_cap(legs.monitor["CHANNEL_CREATE"], ch)
            behaviour = self.phone_behaviour(ch.phone_user)
            if behaviour != "answer":
                self._phone_fails(ch, behaviour)
                return
            self._sleep(self.ANSWER_DELAY_S)
            ch.answered_us = ch.progress_us = _now_us()
            self._emit_cap(legs.monitor["CHANNEL_ANSWER"], ch)
            self._originate_done(ch, f"+OK {ch.uuid}\n")
            if self._channel_for(target_uuid) is None:  # nothing to listen to: eavesdrop returns
                self._hangup(ch, "NORMAL_CLEARING", local=True)
                return
            self._emit_cap(legs.monitor["CHANNEL_EXECUTE"], ch,
                           overrides={"Application-Data": target_uuid})
        except gevent.GreenletExit:
            pass

    def _api_uuid_recv_dtmf(self, arg):
        parts = arg.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <dtmf_data>\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR no such channel\n"
        if getattr(ch, "eavesdrop_target", None):
            for digit in parts[1]:
                ch.eavesdrop_mode = EAVESDROP_MODES.get(digit, ch.eavesdrop_mode)
        gevent.spawn(self._emit_dtmf, ch, parts[1])
        return f"+OK {ch.uuid} received DTMF {parts[1]}.\n"

    def _emit_dtmf(self, ch, digits):
        legs = consult_legs()
        for digit in digits:
            if ch.ended:
                return
            self._emit_cap(legs.monitor["DTMF", 0], ch, overrides={"DTMF-Digit": digit})

    def _end_eavesdroppers(self, gone):
        """A leg went: whoever eavesdropped on it hangs up (eavesdrop returns, the leg ends)."""
        for ch in list(self.channels.values()):
            if getattr(ch, "eavesdrop_target", None) == gone.uuid and not ch.ended:
                gevent.spawn(self._hangup, ch, "NORMAL_CLEARING", True)


def _role(ch):
    return getattr(ch, "consult_role", None) or ch.dial_vars.get("cc_leg")


def _parks(ch):
    """Whether ch parks when its bridge partner goes (instead of hanging up)."""
    variables = {**ch.dial_vars, **{k: v for k, (v, _) in ch.set_vars.items()}}
    return variables.get("park_after_bridge") == "true" or (
        getattr(ch, "park_after", False) and variables.get("hangup_after_bridge") == "false")


def _now_us():
    return int(time.time() * 1_000_000)

