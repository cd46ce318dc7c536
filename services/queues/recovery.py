"""Rebuilding the queues when a process becomes the dispatcher (start, leader change).

The order and state of the queues are in the database (QueueEntry); FreeSWITCH has the
callers (parked) and the agents' legs. Whatever happened while no dispatcher ran is
brought in line with `show channels` (each absent channel confirmed with uuid_exists,
as the listing lags the events):
- a live entry whose caller's channel is gone: abandoned;
- an offer whose agent leg is gone: the agent is back (no miss) and, with nobody else
  ringing, the caller waits again (checked only a few seconds after the process became
  leader: the former leader's last offers may still be on their way to the switch);
- an offer whose agent leg is up and answered (its answer was missed): answered and bridged.
The callers of a node that cannot list its channels (away) are left as they are: the others
are rebuilt all the same, and that node's events process catches up with its calls when back.
"""
import logging

from freeswitch.esl.commands import (
    SHOW_CHANNELS,
    parse_channels,
    parse_uuid_dump,
    parse_uuid_exists,
    uuid_dump_command,
    uuid_exists_command,
)
from models import Call
from models.queue import ABANDONED, ENTRY_LIVE, OFFERING, QueueEntry
from services.outbox import Outbox

logger = logging.getLogger(__name__)


def recover(engine, offers_too=True):
    """Bring the live entries in line with the switch's channels; returns how many changed.

    A process that just became leader calls it with offers_too=False, then again a few
    seconds later with True: the previous leader may have offers committed whose agent
    legs it has not originated yet, and those must not be taken for legs that are gone."""
    entries = list(QueueEntry.select().where(QueueEntry.status.in_(ENTRY_LIVE)))
    if not entries:
        return 0
    names = engine.commands.node_names()
    up, listed = _channels(engine, names)
    calls = {c.id: c for c in Call.select().where(Call.id.in_([e.call_id for e in entries]))}
    changed = 0
    for entry in entries:
        if (entry.node if entry.node in names else names[0]) not in listed:
            continue  # its node cannot tell (away): its events process catches up when back
        call = calls.get(entry.call_id)
        # Ask the switch first, then write: a transaction (on SQLite, the write lock)
        # held across a round trip to FreeSWITCH would stall every other writer.
        alive = call is not None and _alive(engine, call.fs_uuid, up, entry.node)
        legs = _offer_legs(engine, entry, up) if alive and entry.status == OFFERING \
            and offers_too else {}
        with Outbox().atomic() as outbox:
            if not alive:
                changed += engine.leave(entry, ABANDONED, outbox)
            else:
                changed += _recover_offer(engine, entry, legs, outbox)
    if changed:
        logger.info("queues rebuilt: %d of %d live callers changed", changed, len(entries))
    return changed


def _channels(engine, names):
    """(the channel uuids up on the nodes that listed theirs, the names of those nodes): a
    node that is away does not keep the others' callers from being rebuilt."""
    up, listed = set(), set()
    for node in names:
        try:
            up |= {row.get("uuid") for row in parse_channels(
                engine.commands.send(SHOW_CHANNELS, node))}
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning("queues: cannot list channels of node %s to rebuild its queue "
                           "callers (%s); later", node or "default", exc)
            continue
        listed.add(node)
    return up, listed


def _alive(engine, fs_uuid, up, node=None):
    if not fs_uuid:
        return False
    if fs_uuid in up:
        return True
    return parse_uuid_exists(engine.commands.send(uuid_exists_command(fs_uuid), node)) \
        is not False


def _offer_legs(engine, entry, up):
    """agent id -> what its offer leg is now: "gone", "answered" or "ringing"."""
    states = {}
    legs = entry.offer_leg_uuids or {}
    for agent_id in list(entry.offering_agents or []):
        leg = legs.get(agent_id)
        if not leg or not _alive(engine, leg, up, entry.node):
            states[agent_id] = "gone"
            continue
        dump = parse_uuid_dump(engine.commands.send(uuid_dump_command(leg), entry.node) or "")
        states[agent_id] = "answered" if dump and dump.get("Answer-State") == "answered" \
            else "ringing"
    return states


def _recover_offer(engine, entry, states, outbox):
    changed = 0
    legs = entry.offer_leg_uuids or {}
    for agent_id, state in states.items():
        if state == "gone":
            changed += engine.offers.failed(entry, agent_id, outbox, count_miss=False)
        elif state == "answered":
            changed += engine.offers.answered(entry, agent_id, legs[agent_id], outbox)
    return changed
