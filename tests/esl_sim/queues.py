"""Inbound queues in the ESL simulator: music on a parked caller, uuid_break, a tone then
sched_hangup, agent legs originated to park, and uuid_bridge of a waiting caller to an answered
agent leg.

- `uuid_broadcast <uuid> tone_stream://...;loops=-1 aleg` (music while waiting) sets `ch.music`
  (no events: playing forever sends none we subscribe to); a finite tone is kept in `ch.tones`
  and played as any broadcast (its EXECUTE events).
- `uuid_break <uuid> [all]` stops it (`ch.music = None`, `ch.breaks += 1`); `+OK`.
- `sched_hangup +N <uuid> [cause]` hangs the channel up N seconds later (divided by speed).
- `originate {..}user/N &park()`: the agent's phone rings and, answered, the leg parks
  (bridging.py's agent-first flow without a bridge).
- `uuid_bridge <caller> <agent leg>` of an inbound caller: rendered from the captured
  `uuid_bridge C X` of 23_consult_transfer_complete (the caller as C, the agent leg as X):
  CHANNEL_BRIDGE on the caller (Bridge-A = caller, Bridge-B = agent leg). The caller hanging
  up gives, as 24_queue_offer_bridge.capture shows, UNBRIDGE on the caller, the caller's
  HANGUP_COMPLETE, then the agent leg's.
Invented (no capture): the agent's leg hanging up first (the consult capture's order: its
HANGUP_COMPLETE, UNBRIDGE on the caller, the caller's); the agent leg's CHANNEL_PARK (not
sent); replies of uuid_break and sched_hangup beyond `+OK`.
"""
import gevent

from tests.esl_sim.consult import consult_legs


class QueueMixin:
    """The ESLSimulator's queue commands (see the module docstring)."""

    def _queue_music(self, ch, path):
        """uuid_broadcast of a tone stream: a looping one is the queue's music (kept in
        ch.music, nothing played: True); a finite one is also kept in ch.tones and played as
        any broadcast (False)."""
        if not path.startswith("tone_stream://"):
            return False
        if "loops=-1" in path:
            ch.music = path
            return True
        ch.tones = getattr(ch, "tones", []) + [path]
        return False

    def _api_uuid_break(self, arg):
        parts = arg.split()
        ch = self._channel_for(parts[0]) if parts else None
        if ch is None:
            return "-ERR No such channel!\n"
        ch.music = None
        ch.breaks = getattr(ch, "breaks", 0) + 1
        return "+OK\n"

    def _api_sched_hangup(self, arg):
        parts = arg.split()
        if len(parts) < 2 or not parts[0].startswith("+"):
            return "-USAGE: [+]<time> <uuid> [<cause>]\n"
        ch = self._channel_for(parts[1])
        if ch is None:
            return "-ERR No such channel!\n"
        cause = parts[2] if len(parts) > 2 else "ALLOTTED_TIMEOUT"

        def later():
            self._sleep(float(parts[0][1:] or 0))
            if not ch.ended:
                self._hangup(ch, cause, local=True)
        gevent.spawn(later)
        return "+OK\n"

    def _api_uuid_bridge(self, arg):
        parts = arg.split()
        if len(parts) >= 2:
            a, b = self._channel_for(parts[0]), self._channel_for(parts[1])
            if a is not None and b is not None and a.direction == "inbound" and \
                    b.dial_vars.get("cc_leg") == "agent" and a.bridge is None:
                a.consult_role, b.consult_role = "customer", "consult"
                a.music, a.queue_caller = None, True
        return super()._api_uuid_bridge(arg)

    def _hangup_consult_bridged(self, ch, cause, local):
        bridge = ch.bridge
        caller, leg = bridge.a, bridge.b
        if not getattr(caller, "queue_caller", False) or ch is not caller:
            return super()._hangup_consult_bridged(ch, cause, local)
        self._end_bridge_quietly(bridge)
        for one in (caller, leg):
            if one.flow is not None and not one.flow.dead and one.flow is not gevent.getcurrent():
                one.flow.kill(block=False)
        caller.disposition = None if local else "recv_bye"
        legs = consult_legs()
        self._emit_cap(legs.customer["CHANNEL_UNBRIDGE", 0], caller, [(leg, legs.consult)])
        self._hangup_captured(caller, cause, [(leg, legs.consult)])
        self._hangup_captured(leg, cause, [(caller, legs.customer)])
        return None
