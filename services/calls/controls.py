"""Wires a process's live-call controls: hold, mute, DTMF, transfer, consult, monitor."""
from services.calls.consult import CallConsult
from services.calls.control import CallControl
from services.calls.monitor import CallMonitor


def register(services):
    """Build the controls once; a call that ends on hold still counts its hold."""
    services.call_control = CallControl(services.calls, getattr(services, "agents", None))
    services.call_consult = CallConsult(services.call_control)
    services.call_monitor = CallMonitor(services.call_control)
    services.calls.add_hook("ended", services.call_control.on_call_ended)
