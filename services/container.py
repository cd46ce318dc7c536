"""Builds the domain services once per process (web, events, worker) from config and clients."""
from types import SimpleNamespace

from freeswitch.esl.commands import FreeSwitchCommands
from models import check_schema_current, db, init_db
from services import live, outbox_relay
from services.agents import service as agents
from services.calls import controls as call_control
from services.calls.service import CallService
from services.publisher import Publisher
from services.quality import service as quality
from services.recordings import service as recordings
from services.redis_client import make_redis
from services.sip import service as sip

# The order hooks are registered in is the order they run in.
DOMAINS = (recordings, sip, quality, live, outbox_relay, agents, call_control)


def build_process_services(config):
    """Bind the database (refusing one whose schema is older than the code), make the
    Redis client and the FreeSWITCH command link, and build the services: the start of
    the web and events processes."""
    init_db(config["DATABASE_URL"])
    check_schema_current(db)
    commands = FreeSwitchCommands(config["FREESWITCH_HOST"], config["FREESWITCH_PORT"],
                                  config["FREESWITCH_PASSWORD"],
                                  timeout=config["FREESWITCH_TIMEOUT"],
                                  profile=config["FREESWITCH_PROFILE"])
    return build_services(config, make_redis(config["REDIS_URL"]), commands)


def build_services(config, redis_conn, commands):
    """The services every process shares; domains register their call hooks here."""
    publisher = Publisher(redis_conn, history=config.get("STREAM_HISTORY", 1000))
    hooks = {}
    calls = CallService(publisher, commands=commands, config=config, hooks=hooks)
    # background_tasks: callables the events process runs in greenlets (one place
    # per deployment for periodic work such as the metrics channel).
    services = SimpleNamespace(config=config, redis=redis_conn, commands=commands,
                               publisher=publisher, calls=calls, hooks=hooks,
                               background_tasks=[])
    for domain in DOMAINS:
        domain.register(services)
    return services
