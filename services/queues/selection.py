"""Pure rules of the routing engine: which agents a queue offers a caller to, in which
order (strategies and tiers), which callers go first, and how an entry's status may move.

No database, no FreeSWITCH: the dispatcher reads the rows and asks these functions.
"""
import dataclasses
import datetime

from models.queue import (
    ABANDONED,
    ANSWERED,
    CLOSED,
    OFFERING,
    OVERFLOWED,
    RING_ALL,
    ROUND_ROBIN,
    SKILLS,
    TIMED_OUT,
    WAITING,
)

_EPOCH = datetime.datetime(1970, 1, 1)

# status -> the statuses an entry may move to (each move is one conditional UPDATE).
MOVES = {
    WAITING: {OFFERING, ABANDONED, OVERFLOWED, TIMED_OUT, CLOSED},
    OFFERING: {WAITING, ANSWERED, ABANDONED},
}


def can_move(current, target):
    """Whether an entry in status current may become target (ended entries never move)."""
    return target in MOVES.get(current, ())


@dataclasses.dataclass
class Candidate:
    """An available member of a queue, as the strategies see it."""

    agent_id: str
    tier: int = 1
    state_since: datetime.datetime = None      # available since (longest idle first)
    last_offered_at: datetime.datetime = None  # round-robin
    skills: dict = None


def meets(skills, required):
    """Whether an agent's skill levels reach every required minimum."""
    skills = skills or {}
    return all((skills.get(name) or 0) >= int(level) for name, level in (required or {}).items())


def skill_score(skills, required):
    """How well an agent fits: the sum of its levels in the required skills."""
    skills = skills or {}
    return sum(skills.get(name) or 0 for name in (required or {}))


def _idle_key(candidate):
    return candidate.state_since or _EPOCH


def order_candidates(strategy, candidates, required_skills=None):
    """The available members in the order they are offered a caller.

    Lower tiers first (a higher tier is reached only when the lower ones have nobody
    available); inside a tier: longest-idle-agent and ring-all by the time the agent
    became available (longest first), round-robin by the last offer (never offered
    first), skills only agents meeting the queue's required skills, best score first,
    then longest idle. Ties go to the agent id, so the order is always the same.
    """
    pool = list(candidates)
    if strategy == SKILLS:
        pool = [c for c in pool if meets(c.skills, required_skills)]
    return sorted(pool, key=lambda c: _order_key(strategy, c, required_skills))


def _order_key(strategy, c, required_skills):
    if strategy == SKILLS:
        return (c.tier, -skill_score(c.skills, required_skills), _idle_key(c), c.agent_id)
    if strategy == ROUND_ROBIN:
        return (c.tier, c.last_offered_at is not None, c.last_offered_at or _EPOCH, c.agent_id)
    return (c.tier, _idle_key(c), c.agent_id)  # longest-idle-agent, ring-all


def pick(strategy, candidates, taken=(), required_skills=None):
    """The agent ids to ring for one caller: one agent, or for ring-all every available
    member of the best tier that has one. Agents in taken (already offered this round)
    are skipped; [] when nobody fits."""
    ordered = [c for c in order_candidates(strategy, candidates, required_skills)
               if c.agent_id not in taken]
    if not ordered:
        return []
    if strategy == RING_ALL:
        tier = ordered[0].tier
        return [c.agent_id for c in ordered if c.tier == tier]
    return [ordered[0].agent_id]


def caller_order_key(entry):
    """Callers go by priority (higher first), then the oldest first."""
    return (-(entry.priority or 0), entry.entered_at or _EPOCH, entry.id)


def seconds_between(start, end):
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def waited_too_long(entry, max_wait_seconds, now):
    """Whether a waiting caller has reached the queue's maximum wait."""
    return max_wait_seconds is not None and \
        (now - entry.entered_at).total_seconds() >= max_wait_seconds


def estimated_wait(position, staffed, handle_seconds):
    """Seconds the caller at position (1 = next) may still wait: the callers ahead of
    it and itself served by the staffed agents, each call taking handle_seconds."""
    if position <= 0:
        return 0
    staffed = max(1, staffed)
    rounds = (position + staffed - 1) // staffed
    return int(rounds * handle_seconds)

