"""Builds the domain services once per process (web, events, worker) from config and clients."""
from types import SimpleNamespace

from freeswitch.esl.commands import FreeSwitchCommands
from models import check_schema_current, db, init_db
from services import live, outbox_relay
from services.agents import phones as agent_phones
from services.agents import service as agents
from services.calls import controls as call_control
from services.calls.nodes import CallNodes
from services.calls.service import CallService
from services.nodes import parse_nodes
from services.publisher import Publisher
from services.quality import service as quality
from services.queues import config as queue_config
from services.queues import engine as queue_engine
from services.queues import kpis as queue_kpis
from services.recordings import service as recordings
from services.redis_client import make_redis
from services.sip import service as sip
from services.transcripts import service as transcripts
from services.webhooks import service as webhooks

# The order hooks are registered in is the order they run in.
DOMAINS = (recordings, sip, quality, live, outbox_relay, agents, agent_phones, call_control,
           queue_config, queue_engine, queue_kpis, webhooks, transcripts)


def build_process_services(config):
    """Bind the database (refusing one whose schema is older than the code), make the
    Redis client and the FreeSWITCH command link, and build the services: the start of
    the web and events processes."""
    init_db(config["DATABASE_URL"])
    check_schema_current(db)
    redis_conn = make_redis(config["REDIS_URL"])
    # One command link per FreeSWITCH node (FREESWITCH_NODES); a call's commands go to its node.
    commands = CallNodes({node.name: FreeSwitchCommands(
        node.host, node.port, node.password, timeout=config["FREESWITCH_TIMEOUT"],
        profile=config["FREESWITCH_PROFILE"]) for node in parse_nodes(config)}, redis_conn)
    return build_services(config, redis_conn, commands)


def build_services(config, redis_conn, commands):
    """The services every process shares; domains register their call hooks here."""
    publisher = Publisher(redis_conn, history=config.get("STREAM_HISTORY", 1000))
    hooks = {}
    commands = CallNodes.of(commands, redis_conn)
    calls = CallService(publisher, commands=commands, config=config, hooks=hooks)
    # background_tasks: callables the events process runs in greenlets (one place
    # per deployment for periodic work such as the metrics channel).
    services = SimpleNamespace(config=config, redis=redis_conn, commands=commands,
                               publisher=publisher, calls=calls, hooks=hooks,
                               background_tasks=[])
    for domain in DOMAINS:
        domain.register(services)
    return services
