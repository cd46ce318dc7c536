"""Whether an agent's phone is registered to FreeSWITCH (`show registrations as json`).

With several nodes (FREESWITCH_NODES) every node whose events process reports its Event
Socket connected is asked (every node when none does): a phone counts as registered when
any of them lists it, and `nodes_with` tells which, so that a call with the agent on the
line is placed where its phone can be rung.
"""
import logging

from freeswitch.esl.commands import SHOW_REGISTRATIONS, parse_registrations
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from services import nodes as node_registry
from services.agents.endpoints import USER, parse_endpoint
from services.calls.nodes import CallNodes
from services.errors import BadGateway, Unavailable

logger = logging.getLogger(__name__)


def _unavailable(exc):
    return Unavailable(f"FreeSWITCH is unreachable; cannot tell whether the phone is "
                       f"registered ({exc})", headers={"Retry-After": "5"},
                       error_id="freeswitch_unavailable")


def _matches(parsed, registered):
    return any(user == parsed.user and (parsed.domain is None or realm == parsed.domain)
               for user, realm in registered)


class PhoneRegistry:
    """Asks FreeSWITCH, at the moment it matters, which directory users are registered.

    Asked rather than remembered from sofia::register events: a registration
    that expired while the events process was away must not look alive.
    """

    def __init__(self, commands):
        self.commands = commands

    def _nodes(self):
        """[(node name, its commands)] to ask (one FreeSwitchCommands is the node "default")."""
        calls_nodes = CallNodes.of(self.commands)
        nodes = list(calls_nodes.items())
        if len(nodes) > 1 and calls_nodes.redis is not None:
            up = set(node_registry.connected_nodes(calls_nodes.redis, calls_nodes.names))
            nodes = [(name, commands) for name, commands in nodes if name in up] or nodes
        return nodes

    def registered_by_node(self):
        """{node: {(user, realm)}} of the nodes that answered; 503 when none could be
        reached, 502 when none answered with a list."""
        found, failure = {}, None
        for name, commands in self._nodes():
            try:
                found[name] = parse_registrations(commands.api(SHOW_REGISTRATIONS))
            except (FreeSwitchUnavailable, FreeSwitchError, ValueError) as exc:
                logger.info("node %s did not list its registrations: %s", name, exc)
                failure = failure if isinstance(failure, FreeSwitchUnavailable) else exc
        if found:
            return found
        if isinstance(failure, FreeSwitchUnavailable):
            raise _unavailable(failure) from None
        raise BadGateway(f"FreeSWITCH did not list its registrations: {failure}") from None

    def registered_users(self):
        """{(user, realm)} registered now on any node; 503/502 when FreeSWITCH cannot tell."""
        return set().union(*self.registered_by_node().values())

    def is_registered(self, endpoint, registered=None):
        """True/False for a user/... endpoint; None for the others (nothing to register)."""
        parsed = parse_endpoint(endpoint)
        if parsed.kind != USER:
            return None
        if registered is None:
            registered = self.registered_users()
        return _matches(parsed, registered)

    def nodes_with(self, endpoint):
        """The nodes that list a user/... endpoint's phone now; None when that cannot be
        told (another kind of endpoint, or no node answered)."""
        parsed = parse_endpoint(endpoint)
        if parsed.kind != USER:
            return None
        try:
            by_node = self.registered_by_node()
        except (Unavailable, BadGateway):
            return None
        return [node for node, registered in by_node.items() if _matches(parsed, registered)]
