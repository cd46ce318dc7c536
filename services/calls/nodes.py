"""Which FreeSWITCH node a call is placed on, and where its later commands go.

CallNodes maps node names to their FreeSwitchCommands. A new call goes to the
connected node (its events process reports the Event Socket up) with the fewest
live calls; the call row keeps the node, and `commands_for(call)` sends every later
command for it (hang-up, record, hold, transfer, ...) to that node. Used where one
FreeSwitchCommands was, it acts as the first node's commands, so code that has no
call at hand (SIP status, health) keeps working.
"""
import logging

import peewee

from models import Call
from services import nodes as node_registry
from services.calls import state as cs

logger = logging.getLogger(__name__)


class CallNodes:
    def __init__(self, commands_by_node, redis_conn=None):
        if not commands_by_node:
            raise ValueError("CallNodes needs at least one node")
        self.by_node = dict(commands_by_node)
        self.names = tuple(self.by_node)
        self.default_node = self.names[0]
        self.default = self.by_node[self.default_node]
        self.redis = redis_conn

    @classmethod
    def of(cls, commands, redis_conn=None):
        """commands as a CallNodes: itself, or one FreeSwitchCommands as the node "default"."""
        if commands is None or isinstance(commands, CallNodes):
            return commands
        return cls({node_registry.DEFAULT_NODE: commands}, redis_conn)

    def __getattr__(self, name):
        # Anything not about nodes (dialstring, ping, api without a call) is the first node's.
        default = self.__dict__.get("default")
        if default is None:
            raise AttributeError(name)
        return getattr(default, name)

    def on(self, node):
        """The commands of a node by name; a call from before nodes existed (None) or of a
        node no longer configured goes to the first node."""
        return self.by_node.get(node) or self.default

    def commands_for(self, call):
        return self.on(getattr(call, "node", None))

    def items(self):
        return self.by_node.items()

    def live_calls_by_node(self):
        """{node: live calls}; calls without a node count for the first node."""
        counts = dict.fromkeys(self.names, 0)
        rows = (Call.select(Call.node, peewee.fn.COUNT(Call.id))
                .where(Call.status.in_(cs.LIVE)).group_by(Call.node).tuples())
        for node, count in rows:
            node = node if node in counts else self.default_node
            counts[node] += count
        return counts

    def pick(self, among=None):
        """The node for a new call: a connected one with the fewest live calls (the first
        such in FREESWITCH_NODES order on a tie), of the nodes `among` when some of them are
        connected (an agent's phone is registered there). With no node connected, the
        first node (its command connection then answers for itself, e.g. 503)."""
        if len(self.names) == 1:
            return self.default_node
        candidates = (node_registry.connected_nodes(self.redis, self.names)
                      if self.redis is not None else list(self.names))
        preferred = [n for n in candidates if n in (among or ())]
        candidates = preferred or candidates
        if not candidates:
            logger.warning("no FreeSWITCH node reports its Event Socket connected; "
                           "placing the call on %s", self.default_node)
            return self.default_node
        load = self.live_calls_by_node()
        return min(candidates, key=lambda n: (load.get(n, 0), self.names.index(n)))
