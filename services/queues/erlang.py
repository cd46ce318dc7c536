"""Erlang C (M/M/N queue) as pure functions: wait probability, service level, ASA, staffing.

    traffic A (erlangs)  = arrival rate (calls/s) x average handling time (s)
    Erlang B, iterative  : B(0) = 1, B(k) = A.B(k-1) / (k + A.B(k-1))
    Erlang C (P(wait))   : C = N.B / (N - A.(1 - B))                    (N > A)
    service level        : SL(T) = 1 - C . exp(-(N - A) . T / AHT)
    average speed of answer: ASA = C . AHT / (N - A)
    occupancy            : A / N

The recurrence never forms A^N or N!, so it stays exact in floating point for
thousands of agents and hundreds of erlangs (the textbook sum overflows near
N = 170). With N <= A the queue grows without bound: every caller waits,
the service level is 0 and the ASA infinite (None here).
"""
import math

MAX_AGENTS = 100_000


def erlang_b(traffic, agents):
    """Blocking probability of `agents` servers offered `traffic` erlangs (iterative)."""
    if traffic < 0 or agents < 0:
        raise ValueError("traffic and agents must not be negative")
    b = 1.0
    for k in range(1, int(agents) + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(traffic, agents):
    """Probability that a caller waits (Erlang C); 1.0 when agents <= traffic."""
    if agents <= 0 or agents <= traffic:
        return 1.0
    if traffic == 0:
        return 0.0
    b = erlang_b(traffic, agents)
    return agents * b / (agents - traffic * (1.0 - b))


def service_level(traffic, agents, threshold, aht):
    """Share of callers answered within `threshold` seconds."""
    if agents <= traffic:
        return 0.0
    if aht <= 0:
        return 1.0
    c = erlang_c(traffic, agents)
    return max(0.0, min(1.0, 1.0 - c * math.exp(-(agents - traffic) * threshold / aht)))


def average_speed_of_answer(traffic, agents, aht):
    """Mean wait in seconds over all callers (None: unbounded, agents <= traffic)."""
    if agents <= traffic:
        return None
    return erlang_c(traffic, agents) * aht / (agents - traffic)


def occupancy(traffic, agents):
    """Share of the agents' time spent handling calls (capped at 1)."""
    return min(1.0, traffic / agents) if agents > 0 else None


def agents_needed(traffic, target, threshold, aht, max_occupancy=1.0):
    """The fewest agents whose predicted service level reaches `target` (0-1) and whose
    occupancy does not exceed `max_occupancy`."""
    if not 0 < target < 1:
        raise ValueError("target service level must be between 0 and 1 (exclusive)")
    if traffic <= 0:
        return 0
    agents = max(1, math.floor(traffic) + 1)
    if agents > MAX_AGENTS:
        raise ValueError(f"more than {MAX_AGENTS} agents needed")
    b = erlang_b(traffic, agents)  # then one recurrence step per extra agent
    while agents <= MAX_AGENTS:
        c = agents * b / (agents - traffic * (1.0 - b))
        level = 1.0 - c * math.exp(-(agents - traffic) * threshold / aht) if aht > 0 else 1.0
        if level >= target and traffic / agents <= max_occupancy:
            return agents
        agents += 1
        b = traffic * b / (agents + traffic * b)
    raise ValueError(f"more than {MAX_AGENTS} agents needed")


def prediction(traffic, agents, threshold, aht):
    """Every Erlang C figure for a number of agents (a dict the API shows)."""
    asa = average_speed_of_answer(traffic, agents, aht)
    return {
        "agents": agents,
        "probability_of_waiting": round(erlang_c(traffic, agents), 4),
        "service_level": round(service_level(traffic, agents, threshold, aht), 4),
        "asa_seconds": None if asa is None else round(asa, 1),
        "occupancy": None if agents == 0 else round(occupancy(traffic, agents), 4),
    }
