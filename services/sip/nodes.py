"""SIP gateways on every FreeSWITCH node: each gateway is loaded on all of them.

EveryNodeControl stands where one SofiaGatewayControl was (the applier, the tester):
`load`/`unload` go to each node in turn; a node that is unreachable makes the whole
application pending (the retry loop applies it again on every node once they answer),
a node that refuses makes it failed, naming the node. `status` is the first node's.
"""
from freeswitch.esl.connection import FreeSwitchUnavailable
from freeswitch.esl.sofia_gateways import SofiaGatewayControl, SofiaRefused


class EveryNodeControl:
    def __init__(self, commands_by_node, profile="external"):
        self.controls = [(node, SofiaGatewayControl(commands, profile=profile))
                         for node, commands in commands_by_node.items()]
        self.commands = dict(commands_by_node)

    def status(self, name):
        return self.controls[0][1].status(name)

    def load(self, name):
        return self._on_each("load", name)

    def unload(self, name):
        return self._on_each("unload", name)

    def _on_each(self, action, name):
        if len(self.controls) == 1:
            return getattr(self.controls[0][1], action)(name)
        done, away = [], []
        for node, control in self.controls:
            try:
                done.append(f"{getattr(control, action)(name)} on {node}")
            except FreeSwitchUnavailable:
                away.append(node)
            except SofiaRefused as exc:
                raise SofiaRefused(f"node {node}: {exc}") from None
        if away:
            raise FreeSwitchUnavailable(f"node(s) {', '.join(away)} unreachable "
                                        f"({', '.join(done) or 'applied nowhere yet'})")
        return ", ".join(done)

    def any_reachable(self):
        return any(commands.ping() for commands in self.commands.values())

    def node_views(self, name):
        """{node: what that node's FreeSWITCH says of the gateway}: loaded, state, status
        (None when the node is unreachable), or freeswitch_error."""
        views = {}
        for node, control in self.controls:
            if not self.commands[node].ping():
                views[node] = {"loaded": None, "state": None, "status": None,
                               "freeswitch_error": "unreachable"}
                continue
            try:
                fields = control.status(name)
            except FreeSwitchUnavailable:
                fields = None
            except SofiaRefused as exc:
                views[node] = {"loaded": None, "state": None, "status": None,
                               "freeswitch_error": str(exc)[:200]}
                continue
            views[node] = {"loaded": bool(fields), "state": (fields or {}).get("state"),
                           "status": (fields or {}).get("status"), "freeswitch_error": None}
        return views

    def esl_states(self):
        """{node: {"command_connection", "freeswitch_reachable"}}."""
        return {node: {"freeswitch_reachable": commands.ping(),
                       "command_connection": commands.state()}
                for node, commands in self.commands.items()}
