"""QueueCommands: what the queues send FreeSWITCH, each after the commit of the change that
asks for it (outbox.add), so nothing is sent for a change that rolled back.

With several FreeSWITCH nodes each command goes to the node of the caller's call (`node`:
the call's FREESWITCH_NODES name; None: the first node); an agent's leg is originated on
the caller's node, so that the two can be bridged.
"""
import logging

from freeswitch.esl import queues as fsq
from freeswitch.esl.commands import transfer_command
from services import nodes as node_registry
from services.agents.endpoints import dial_string

logger = logging.getLogger(__name__)


class QueueCommands:
    """Sends the queues' FreeSWITCH commands (commands: FreeSwitchCommands or CallNodes)."""

    def __init__(self, commands, config):
        self.commands = commands
        self.config = config

    def _link(self, node):
        on = getattr(self.commands, "on", None)
        return on(node) if node and on is not None else self.commands

    def node_names(self):
        """Every node's name ([None]: one switch, no names)."""
        return list(getattr(self.commands, "names", None) or [None])

    def reachable(self, redis_conn):
        """node -> whether callers on that node can be offered now: its events process
        reports its Event Socket connected (an agent's leg can be sent there and its answer
        seen). Every node can, with one node or when Redis cannot tell; a call without a
        node (or of a node no longer configured) is on the first."""
        names = [n for n in self.node_names() if n]
        if len(names) < 2:
            return lambda node: True
        up = set(node_registry.connected_nodes(redis_conn, names))
        return lambda node: (node if node in names else names[0]) in up

    def send(self, command, node=None):
        """Send one api command; returns its reply, or None when it failed (logged)."""
        try:
            reply = self._link(node).api(command)
        except Exception as exc:  # FreeSWITCH unreachable: the caller still waits parked
            logger.warning("queues: %s failed: %s", command.split(" ", 1)[0], exc)
            return None
        if not fsq.reply_ok(reply):
            logger.info("queues: %s answered %s", command.split(" ", 2)[:2], reply.strip()[:200])
        return reply

    # ----- music ---------------------------------------------------------
    def music_later(self, outbox, fs_uuid, node=None):
        if fs_uuid:
            outbox.add(self.send, fsq.music_command(fs_uuid), node)

    # ----- offers --------------------------------------------------------
    def originate_later(self, outbox, leg_uuid, call_id, entry_id, endpoint, timeout, on_fail,
                        node=None, still_wanted=None, queue_id=None):
        """Ring an agent's phone for a queued caller; on_fail(reason) when it cannot be sent.
        still_wanted() is asked just before sending: False (the offer was taken back
        meanwhile, e.g. by a new dispatcher) and nothing is sent."""
        try:
            command = fsq.offer_originate_command(leg_uuid, call_id, entry_id,
                                                  dial_string(endpoint), timeout,
                                                  queue_id=queue_id)
        except ValueError as exc:
            logger.warning("queues: cannot dial agent endpoint %r: %s", endpoint, exc)
            outbox.add(on_fail, "bad-endpoint")
            return
        # First after the commit: the phone rings before the batch's other commands go out.
        outbox.add_first(self._originate, command, leg_uuid, on_fail, node, still_wanted)

    def _originate(self, command, leg_uuid, on_fail, node=None, still_wanted=None):
        if still_wanted is not None and not still_wanted():
            logger.warning("queues: offer leg %s taken back before it was sent; not sent",
                           leg_uuid)
            return
        try:
            self._link(node).bgapi(command, job_uuid=leg_uuid)
        except Exception as exc:
            logger.warning("queues: originate of agent leg %s failed: %s", leg_uuid, exc)
            on_fail("originate-failed")
            # A timeout may hide a command the switch got: the leg must not ring on (the
            # offer is taken back first, so its hang-up is no missed offer). One created
            # after this kill is hung up on answer: stale_leg knows it by its entry.
            self.send(fsq.kill_command(leg_uuid), node)

    def bridge_later(self, outbox, caller_uuid, agent_uuid, node=None):
        """Stop the caller's music and bridge it to the agent's answered, parked leg."""
        outbox.add(self._bridge, caller_uuid, agent_uuid, node)

    def _bridge(self, caller_uuid, agent_uuid, node=None):
        self.send(fsq.break_command(caller_uuid), node)
        reply = self.send(fsq.bridge_command(caller_uuid, agent_uuid), node)
        if reply is None or not fsq.reply_ok(reply):
            # The caller is gone (its hang-up ends the entry): the agent's leg goes too.
            self.send(fsq.kill_command(agent_uuid), node)

    def kill_later(self, outbox, fs_uuid, cause="NORMAL_CLEARING", node=None):
        if fs_uuid:
            outbox.add(self.send, fsq.kill_command(fs_uuid, cause), node)

    # ----- leaving the queue ---------------------------------------------
    def tone_and_hangup(self, outbox, fs_uuid, node=None):
        """A short tone, then the caller is hung up (closed, max wait, nowhere to go)."""
        if fs_uuid:
            outbox.add(self._tone_and_hangup, fs_uuid, node)

    def _tone_and_hangup(self, fs_uuid, node=None):
        self.send(fsq.break_command(fs_uuid), node)
        self.send(fsq.tone_command(fs_uuid), node)
        self.send(fsq.sched_hangup_command(fs_uuid), node)

    def to_number(self, outbox, fs_uuid, number, node=None):
        """Send the caller on to a number through the default gateway (it leaves the queue)."""
        gateway = self.config.get("DEFAULT_GATEWAY") or None
        try:
            command = transfer_command(fs_uuid, self.commands.dialstring(number, gateway))
        except ValueError as exc:
            logger.warning("queues: cannot send call %s to %r: %s; hanging up", fs_uuid,
                           number, exc)
            return self.tone_and_hangup(outbox, fs_uuid, node)
        outbox.add(self.break_then, fs_uuid, command, node)
        return None

    def break_then(self, fs_uuid, command, node=None):
        """Stop the caller's music, then send command (a transfer of the caller)."""
        self.send(fsq.break_command(fs_uuid), node)
        self.send(command, node)
