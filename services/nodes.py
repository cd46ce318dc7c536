"""The FreeSWITCH nodes of a deployment (FREESWITCH_NODES) and what their events processes report.

FREESWITCH_NODES lists the switches, either as `name=host:port:password,...` or as
a JSON list of objects {"name", "host", "port", "password"[, "gateway_dir"]}. Unset,
the single-node settings (FREESWITCH_HOST/PORT/PASSWORD) make one node named
"default". Each node has one `events` process (`python -m freeswitch --node NAME`),
which writes its connection state under its own Redis key; the web processes read
those keys for health, metrics and the choice of a node for a new call.
"""
import json
import time
from typing import NamedTuple

import redis

from config import ConfigError
from services import redis_client

DEFAULT_NODE = "default"
# One key per node: the events process of that node writes it every few seconds.
EVENTS_STATE_PREFIX = redis_client.KEY_PREFIX + "events:state:"
# Counters of events applied, by node and event name: a hash of "node|name" -> count.
EVENTS_APPLIED_KEY = redis_client.KEY_PREFIX + "metrics:events_applied"
CONNECTED = "connected"


class Node(NamedTuple):
    name: str
    host: str
    port: int
    password: str
    gateway_dir: str


def _node(cfg, name, host, port, password, gateway_dir=None):
    name = str(name or "").strip()
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"FREESWITCH_NODES: node name {name!r} must be letters, digits, - _ .")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ConfigError(f"FREESWITCH_NODES: node {name} has port {port!r}") from None
    if not host:
        raise ConfigError(f"FREESWITCH_NODES: node {name} has no host")
    return Node(name, str(host), port, str(password or cfg.get("FREESWITCH_PASSWORD", "ClueCon")),
                gateway_dir or cfg.get("FREESWITCH_GATEWAY_DIR"))


def _from_json(cfg, text):
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"FREESWITCH_NODES is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError("FREESWITCH_NODES (JSON) must be a list of objects")
    return [_node(cfg, i.get("name"), i.get("host"), i.get("port", 8021), i.get("password"),
                  i.get("gateway_dir")) for i in items]


def _from_pairs(cfg, text):
    nodes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, where = item.partition("=")
        if not sep:
            raise ConfigError(f"FREESWITCH_NODES: {item!r} is not name=host:port[:password]")
        host, _, rest = where.partition(":")
        port, _, password = rest.partition(":")
        nodes.append(_node(cfg, name, host, port or 8021, password))
    return nodes


def parse_nodes(cfg):
    """The configured nodes, in order (the first is the default for calls without a node)."""
    text = (cfg.get("FREESWITCH_NODES") or "").strip()
    if not text:
        return (_node(cfg, DEFAULT_NODE, cfg.get("FREESWITCH_HOST", "127.0.0.1"),
                      cfg.get("FREESWITCH_PORT", 8021), cfg.get("FREESWITCH_PASSWORD")),)
    nodes = _from_json(cfg, text) if text.startswith("[") else _from_pairs(cfg, text)
    if not nodes:
        raise ConfigError("FREESWITCH_NODES names no node")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ConfigError(f"FREESWITCH_NODES names a node twice: {names}")
    return tuple(nodes)


def node_config(cfg, name):
    """cfg as one node's events process sees it: FREESWITCH_HOST/PORT/PASSWORD of that node."""
    nodes = {n.name: n for n in parse_nodes(cfg)}
    if name is None:
        name = next(iter(nodes))
    if name not in nodes:
        raise ConfigError(f"no FreeSWITCH node {name!r} in FREESWITCH_NODES ({', '.join(nodes)})")
    node = nodes[name]
    return dict(cfg, FREESWITCH_HOST=node.host, FREESWITCH_PORT=node.port,
                FREESWITCH_PASSWORD=node.password, FREESWITCH_GATEWAY_DIR=node.gateway_dir,
                FREESWITCH_NODE=node.name)


def state_key(node):
    return EVENTS_STATE_PREFIX + node


def report_state(redis_conn, node, state, ttl):
    """The events process of `node` tells how its connection is doing (expires after ttl)."""
    redis_conn.set(state_key(node), json.dumps(dict(state, node=node, at=time.time())),
                   ex=max(1, int(ttl)))


def read_states(redis_conn, names):
    """{node: its last reported state dict, or None when its events process has not reported}.
    Raises redis.RedisError when Redis is down."""
    names = list(names)
    raws = redis_conn.mget([state_key(n) for n in names]) if names else []
    states = {}
    for name, raw in zip(names, raws):
        try:
            states[name] = json.loads(raw) if raw else None
        except ValueError:
            states[name] = None
    return states


def connected_nodes(redis_conn, names):
    """The nodes whose events process reports its Event Socket connected (all when Redis is
    down: the web cannot tell, and refusing every call would be worse)."""
    try:
        states = read_states(redis_conn, names)
    except redis.RedisError:
        return list(names)
    return [n for n in names if (states.get(n) or {}).get("state") == CONNECTED]


def add_applied_events(redis_conn, node, counts):
    """Add an events process's applied-event counts (event name -> n) to the shared counters."""
    if not counts:
        return
    pipe = redis_conn.pipeline(transaction=False)
    for name, count in counts.items():
        pipe.hincrby(EVENTS_APPLIED_KEY, f"{node}|{name}", count)
    pipe.execute()


def applied_events(redis_conn):
    """{(node, event name): count} of every events process since Redis was last emptied."""
    out = {}
    for field, value in redis_conn.hgetall(EVENTS_APPLIED_KEY).items():
        field = field.decode() if isinstance(field, bytes) else field
        node, _, name = field.partition("|")
        out[(node, name)] = int(value)
    return out
