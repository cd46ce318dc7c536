"""POST /api/sip/test: a gateway's peer tried step by step (DNS, transport, FreeSWITCH's view)."""
import time

import gevent

from freeswitch.esl import sip_probe
from freeswitch.esl.connection import FreeSwitchUnavailable
from freeswitch.esl.gateway_xml import DEFAULT_PORTS, split_hostport
from freeswitch.esl.sofia_gateways import SofiaRefused
from services.sip.configuration import field_errors
from services.sip.presets import CUSTOM, preset_of
from services.sip.registration import HEALTHY_STATES

# The steps after DNS, per transport.
LATER_STEPS = {"udp": ["sip_options"], "tcp": ["tcp_connect", "sip_options"],
               "tls": ["tcp_connect", "tls_handshake", "sip_options"],
               "ws": ["tcp_connect", "websocket_upgrade"],
               "wss": ["tcp_connect", "tls_handshake", "websocket_upgrade"]}


class GatewayTester:
    """Runs the connection test. find(name) -> the saved gateway or None; get(name) raises."""

    def __init__(self, control, default_timeout, find, get):
        self.control = control
        self.default_timeout = default_timeout
        self.find = find
        self.get = get

    def test(self, args):
        """Step by step: DNS, the transport (OPTIONS, connect, TLS, upgrade), FreeSWITCH's view."""
        timeout = float(args.get("timeout") or self.default_timeout)
        host, port, transport, name, ws_path = self._target(args)
        started = time.monotonic()
        steps = network_steps(host, port, transport, timeout, ws_path,
                              args.get("verify_tls", True))
        steps.append(self._freeswitch_step(name, timeout))
        dumped = [s.as_dict() for s in steps]
        return {"gateway": name, "target": {"host": host, "port": port, "transport": transport},
                "ok": all(s.ok is not False for s in steps) and any(s.ok for s in steps),
                "steps": dumped,
                "time_ms": round((time.monotonic() - started) * 1000, 2)}

    def _target(self, args):
        """(host, port, transport, saved name or None, ws path) of the peer to test."""
        given = {k: v for k, v in args.items() if k not in ("timeout", "verify_tls")}
        if set(given) == {"name"}:
            gateway = self.get(args["name"])
            proxy, name = gateway.outbound_proxy, gateway.name
            host, port, transport = gateway.host, gateway.port, gateway.transport
            provider = gateway.provider
        else:
            if not given.get("host"):
                raise field_errors({"host": "give a saved gateway's name alone, or a host "
                                            "(and port, transport) to test"})
            provider = given.get("provider") or CUSTOM
            preset = preset_of(provider)
            transport = given.get("transport") or preset["transport"]
            host, proxy, name = given["host"], given.get("outbound_proxy"), None
            port = given.get("port") or preset["ports"].get(transport, DEFAULT_PORTS[transport])
            if given.get("name"):
                saved = self.find(given["name"])
                name = saved.name if saved is not None else None
        if proxy:
            # SIP goes to the outbound proxy: that is the peer to reach.
            proxy_host, proxy_port = split_hostport(proxy)
            host, port = proxy_host, proxy_port or DEFAULT_PORTS[transport]
        return host, port, transport, name, preset_of(provider).get("ws_path", "/")

    def _freeswitch_step(self, name, timeout):
        step = "freeswitch"
        if name is None:
            return sip_probe.skipped(step, "not a saved gateway: FreeSWITCH does not know it")
        started = time.monotonic()

        def elapsed():
            return (time.monotonic() - started) * 1000

        try:
            with gevent.Timeout(timeout + 0.5, FreeSwitchUnavailable("no answer")):
                view = self.control.status(name)
        except FreeSwitchUnavailable as exc:
            return sip_probe.ProbeStep(step, False, f"FreeSWITCH unreachable: {exc}", elapsed())
        except SofiaRefused as exc:
            return sip_probe.ProbeStep(step, False, str(exc), elapsed())
        if view is None:
            return sip_probe.ProbeStep(step, False, f"FreeSWITCH has no gateway {name} loaded",
                                       elapsed(), {"loaded": False})
        state, status = view.get("state"), view.get("status")
        ok = state in HEALTHY_STATES and status == "UP"
        detail = f"state {state}, status {status}, ping {view.get('pingtime')} ms"
        if view.get("retry"):
            detail += f", retry in {view['retry']}"
        return sip_probe.ProbeStep(step, ok, detail, elapsed(),
                                   {"loaded": True, "state": state, "gateway_status": status})


def network_steps(host, port, transport, timeout, ws_path, verify_tls):
    """DNS, then the transport's steps on the first address (skipped after a failure)."""
    dns, addresses = sip_probe.resolve(host, port, transport, timeout)
    later = LATER_STEPS[transport]
    if not dns.ok:
        return [dns] + [sip_probe.skipped(s, "DNS resolution failed") for s in later]
    family, address = addresses[0]
    if transport == "udp":
        return [dns, sip_probe.options_udp(address, family, port, host, timeout)]
    connect, sock = sip_probe.tcp_connect(address, family, port, timeout)
    steps = [dns, connect]
    try:
        if sock is not None and transport in ("tls", "wss"):
            handshake, tls = sip_probe.tls_handshake(sock, host, timeout, verify_tls)
            steps.append(handshake)
            sock = tls or sock
            if tls is None:
                sock.close()
                sock = None
        for name in later[len(steps) - 1:]:
            if sock is None:
                steps.append(sip_probe.skipped(name, "no connection"))
            elif name == "sip_options":
                steps.append(sip_probe.options_stream(sock, host, port, transport, timeout))
            else:
                steps.append(sip_probe.websocket_upgrade(sock, host, port, timeout,
                                                         path=ws_path,
                                                         secure=transport == "wss"))
    finally:
        if sock is not None:
            sock.close()
    return steps
