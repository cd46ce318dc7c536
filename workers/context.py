"""The worker process's services, built once per process (jobs take ids and look them up here)."""
from config import load_config
from services.container import build_process_services

_services = None


def set_services(services):
    """Called once by the worker's entry point with what it built."""
    global _services
    _services = services


def current_services():
    """The process's services; built on first use when a job runs outside the entry point
    (an in-process test, `rq worker` started by hand)."""
    global _services
    if _services is None:
        _services = build_process_services(load_config())
    return _services
