"""Builds the domain services once per process (web, events, worker) from config and clients."""
from types import SimpleNamespace

from services.calls import CallService
from services.notifier import Notifier


def build_services(config, redis_conn, commands):
    """The services every process shares; domains register their call hooks here."""
    notifier = Notifier(redis_conn, history=config.get("STREAM_HISTORY", 1000))
    hooks = {}
    calls = CallService(notifier, commands=commands, config=config, hooks=hooks)
    # background_tasks: callables the events process runs in greenlets (one place
    # per deployment for periodic work such as the metrics channel).
    services = SimpleNamespace(config=config, redis=redis_conn, commands=commands,
                               notifier=notifier, calls=calls, hooks=hooks,
                               background_tasks=[])
    from services import live, quality, recordings, sip
    for domain in (recordings, sip, quality, live):
        domain.register(services)
    return services


def domain_event_handlers(services):
    """FreeSWITCH event handlers of the non-call domains, merged."""
    from services import quality, recordings, sip
    handlers = {}
    for domain in (recordings, sip, quality):
        handlers.update(domain.event_handlers(services))
    return handlers
