"""AgentService: the one place that changes agents and moves them through their state machine."""
import datetime
import logging
import time

import peewee

from models import fastsql
from models.agent import Agent, AgentStateChange
from models.db import db_session, utcnow
from models.queue import TARGET_AGENT, senders_to
from services.agents import state as ag
from services.agents.notifier import AgentNotifier
from services.agents.registration import PhoneRegistry
from services.errors import Conflict, NotFound, ServiceError
from services.outbox import Outbox

logger = logging.getLogger(__name__)

SOURCE_API = "api"
SOURCE_CALL = "call"
SOURCE_TIMER = "timer"
TRAIL_LIMIT = 10000  # rows one trail request returns at most (narrow the dates for more)
EDITABLE = ("name", "endpoint", "wrapup_seconds", "skills", "enabled")


class AgentService:
    """CRUD of agents, their state changes (each kept in the trail) and call offers.

    Every state change is one conditional UPDATE (`WHERE state = <what we read>`):
    two writers racing on one agent (two offers, an offer and a logout) cannot
    both win, on SQLite or PostgreSQL, without holding locks across FreeSWITCH calls.
    """

    def __init__(self, publisher, commands=None, config=None):
        self.notifier = AgentNotifier(publisher)
        self.phones = PhoneRegistry(commands)
        self.config = config or {}

    # ----- reading -------------------------------------------------------
    @staticmethod
    def get(agent_id):
        agent = Agent.get_or_none(Agent.id == str(agent_id))
        if agent is None:
            raise NotFound(f"agent {agent_id} not found", error_id="agent_not_found")
        return agent

    def get_with_phone(self, agent_id):
        """The agent, with whether FreeSWITCH has its phone registered now (None: cannot tell)."""
        agent = self.get(agent_id)
        try:
            agent.phone_registered = self.phones.is_registered(agent.endpoint)
        except ServiceError as exc:  # FreeSWITCH down or garbled: the agent is still shown
            logger.info("phone registration of agent %s unknown: %s", agent.id, exc)
            agent.phone_registered = None
        return agent

    @staticmethod
    def list(filters):
        query = Agent.select().order_by(Agent.id)
        if filters.get("state"):
            query = query.where(Agent.state == filters["state"])
        if filters.get("enabled") is not None:
            query = query.where(Agent.enabled == filters["enabled"])
        return query

    def list_with_phones(self, filters):
        """The agents, each with whether its phone is registered now (one `show
        registrations` for the whole list; None for every agent when FreeSWITCH cannot tell)."""
        found = list(self.list(filters))
        try:
            registered = self.phones.registered_users()
        except ServiceError as exc:
            logger.info("phone registrations unknown for the agent list: %s", exc)
            registered = None
        for agent in found:
            agent.phone_registered = (None if registered is None
                                      else self.phones.is_registered(agent.endpoint, registered))
        return found

    def trail(self, agent_id, date_from=None, date_to=None):
        """The agent's state changes in [date_from, date_to), oldest first."""
        agent = self.get(agent_id)
        query = AgentStateChange.select().where(AgentStateChange.agent == agent)
        if date_from is not None:
            query = query.where(AgentStateChange.at >= date_from)
        if date_to is not None:
            query = query.where(AgentStateChange.at < date_to)
        return list(query.order_by(AgentStateChange.at, AgentStateChange.id).limit(TRAIL_LIMIT))

    # ----- managing agents -----------------------------------------------
    def create(self, args):
        try:
            with Outbox().atomic() as outbox:
                now = utcnow()
                agent = Agent.create(id=args["id"], name=args["name"], endpoint=args["endpoint"],
                                     wrapup_seconds=args.get("wrapup_seconds", 30),
                                     skills=args.get("skills") or {},
                                     enabled=args.get("enabled", True), state=ag.LOGGED_OUT,
                                     state_since=now, created_at=now, updated_at=now)
                self.notifier.agent_saved(agent, True, outbox)
        except peewee.IntegrityError:
            raise Conflict(f"agent {args['id']} already exists", error_id="agent_exists") from None
        return agent

    def update(self, agent_id, changes):
        """Change the agent's settings; disabling one that is logged in is refused."""
        with Outbox().atomic() as outbox:
            agent = self.get(agent_id)
            if changes.get("enabled") is False and agent.state != ag.LOGGED_OUT:
                raise Conflict(f"agent {agent_id} is {agent.state}; log it out before disabling",
                               error_id="agent_logged_in")
            for key in EDITABLE:
                if key in changes:
                    setattr(agent, key, changes[key])
            agent.updated_at = utcnow()
            agent.save()
            self.notifier.agent_saved(agent, False, outbox)
        return agent

    def delete(self, agent_id):
        """Delete a logged-out agent and its trail."""
        with Outbox().atomic() as outbox:
            agent = self.get(agent_id)
            if agent.state != ag.LOGGED_OUT:
                raise Conflict(f"agent {agent_id} is {agent.state}; log it out before deleting",
                               error_id="agent_logged_in")
            users = senders_to(TARGET_AGENT, agent.id)
            if users:  # its callers would hear a tone and be hung up
                raise Conflict(f"agent {agent.id} is the target of {', '.join(users)}; point "
                               "them elsewhere first", error_id="agent_in_use")
            AgentStateChange.delete().where(AgentStateChange.agent == agent).execute()
            agent.delete_instance()
            self.notifier.agent_deleted(agent.id, outbox)

    # ----- the agent's own actions ---------------------------------------
    def login(self, agent_id):
        return self.act(agent_id, "login")

    def logout(self, agent_id):
        return self.act(agent_id, "logout")

    def pause(self, agent_id, reason):
        return self.act(agent_id, "pause", reason=reason)

    def resume(self, agent_id):
        return self.act(agent_id, "resume")

    def ready(self, agent_id):
        return self.act(agent_id, "ready")

    def act(self, agent_id, action, reason=None):
        """Apply an API action (login, logout, pause, resume, ready); 409 when not allowed."""
        for _ in range(3):
            agent = self.get(agent_id)
            target = self._target(agent, action, reason)
            if target is None:
                return agent
            if ag.needs_phone(target):
                self._check_phone(agent)
            with Outbox().atomic() as outbox:
                if self._move(agent, target, reason, SOURCE_API, outbox):
                    return agent
        raise Conflict(f"agent {agent_id} kept changing; try again",
                       error_id="invalid_agent_transition")

    @staticmethod
    def _target(agent, action, reason):
        if action == "login" and not agent.enabled:
            raise Conflict(f"agent {agent.id} is disabled", error_id="agent_disabled")
        try:
            return ag.decide(agent.state, action, reason, agent.state_reason)
        except ag.InvalidAgentTransition as exc:
            raise Conflict(str(exc), error_id="invalid_agent_transition") from None

    def _check_phone(self, agent):
        agent.phone_registered = self.phones.is_registered(agent.endpoint)
        if agent.phone_registered is False:
            raise Conflict(f"agent {agent.id}'s phone ({agent.endpoint}) is not registered to "
                           "FreeSWITCH; it cannot take calls",
                           error_id="agent_phone_not_registered")

    # ----- the state machine ---------------------------------------------
    def _move(self, agent, target, reason, source, outbox, call_id=None, expect_call=None,
              wrapup_until=None):
        """Move agent from the state it was read in to target, if no one moved it since.

        Returns False when another writer changed the agent first (nothing written).
        """
        now = utcnow()
        keep_call = target in (ag.RINGING, ag.ON_CALL, ag.WRAP_UP)
        values = {"state": target, "state_reason": reason if target == ag.PAUSED else None,
                  "state_since": now, "updated_at": now, "wrapup_until": wrapup_until,
                  "call_id": (call_id or agent.call_id) if keep_call else None}
        where = (Agent.id == agent.id) & (Agent.state == agent.state)
        if expect_call is not None:
            where &= Agent.call_id == expect_call
        if agent.state == ag.PAUSED:
            where &= _same_or_null(Agent.state_reason, agent.state_reason)
        if Agent.update(**values).where(where).execute() != 1:
            return False
        fastsql.insert_values(AgentStateChange, agent=agent.id, from_state=agent.state,
                              to_state=target, reason=values["state_reason"], at=now,
                              source=source, call_id=call_id or agent.call_id)
        for key, value in values.items():
            setattr(agent, key, value)
        self.notifier.state_changed(agent, outbox)
        return True

    # ----- calls (bridging, events) --------------------------------------
    def reserve(self, agent_id, call_id):
        """Offer call_id to the agent: available -> ringing, or 409. Of two racing offers
        exactly one wins (the UPDATE is conditional on the agent being available)."""
        with Outbox().atomic() as outbox:
            agent = self.get(agent_id)
            if not agent.enabled:
                raise Conflict(f"agent {agent_id} is disabled", error_id="agent_disabled")
            if agent.state != ag.AVAILABLE or not self._move(agent, ag.RINGING, None, SOURCE_CALL,
                                                              outbox, call_id=call_id):
                current = Agent.get_by_id(agent.id).state
                raise Conflict(f"agent {agent_id} is {current}, not available",
                               error_id="agent_not_available")
        return agent

    def connected(self, agent_id, call_id):
        """The agent answered call_id: ringing -> on-call (a stale event changes nothing)."""
        return self._call_step(agent_id, call_id, ag.RINGING, ag.ON_CALL)

    def missed(self, agent_id, call_id):
        """The agent let call_id ring out: paused with reason no-answer."""
        return self._call_step(agent_id, call_id, ag.RINGING, ag.PAUSED, reason="no-answer")

    def offer_missed(self, agent_id, call_id, max_missed):
        """A queue's offer of call_id rang out or failed: one more miss in a row. At
        max_missed misses in a row the agent is paused (no-answer, announced) and the count
        starts again; before, the agent is available again. None when stale (moved already)."""
        agent = Agent.get_or_none(Agent.id == str(agent_id))
        if agent is None or agent.state != ag.RINGING or agent.call_id != call_id:
            return None
        misses = (agent.missed_offers or 0) + 1
        paused = max_missed is not None and misses >= max_missed
        moved = self._call_step(agent_id, call_id, ag.RINGING, ag.PAUSED if paused
                                else ag.AVAILABLE, reason="no-answer" if paused else None)
        if moved is not None:
            Agent.update(missed_offers=0 if paused else Agent.missed_offers + 1).where(
                Agent.id == agent.id).execute()
            moved.missed_offers = 0 if paused else misses
        return moved

    @staticmethod
    def offer_answered(agent_id):
        """The agent answered a queue's offer: its misses in a row start again from 0."""
        Agent.update(missed_offers=0).where((Agent.id == str(agent_id)) &
                                            (Agent.missed_offers != 0)).execute()

    def released(self, agent_id, call_id):
        """call_id ended for the agent: on-call -> wrap-up until the wrap-up deadline;
        ringing (never answered) -> available again."""
        agent = Agent.get_or_none(Agent.id == str(agent_id))
        if agent is None or agent.call_id != call_id:
            return None
        if agent.state == ag.RINGING:
            return self._call_step(agent_id, call_id, ag.RINGING, ag.AVAILABLE)
        until = utcnow() + datetime.timedelta(seconds=agent.wrapup_seconds)
        return self._call_step(agent_id, call_id, ag.ON_CALL, ag.WRAP_UP, wrapup_until=until)

    def _call_step(self, agent_id, call_id, source_state, target, reason=None,
                   wrapup_until=None):
        with Outbox().atomic() as outbox:
            agent = Agent.get_or_none(Agent.id == str(agent_id))
            if agent is None or agent.state != source_state or agent.call_id != call_id:
                return None
            moved = self._move(agent, target, reason, SOURCE_CALL, outbox, call_id=call_id,
                               expect_call=call_id, wrapup_until=wrapup_until)
        return agent if moved else None

    def finish_wrapups(self, now=None):
        """Move every agent whose wrap-up time is over back to available; returns how many."""
        now = now or utcnow()
        due = list(Agent.select().where((Agent.state == ag.WRAP_UP) &
                                        (Agent.wrapup_until <= now)))
        moved = 0
        if not due:
            return moved
        with Outbox().atomic() as outbox:  # one commit for the round, not one per agent
            for agent in due:
                moved += self._move(agent, ag.AVAILABLE, None, SOURCE_TIMER, outbox,
                                    expect_call=agent.call_id)
        return moved

    def phone_status_changed(self, agent, registered):
        """The browser phone check (services/agents/phones.py): an available agent whose
        phone dropped -> paused (phone-offline); paused phone-offline and back -> available.
        False when the agent moved meanwhile (nothing written)."""
        if registered:
            if agent.state != ag.PAUSED or agent.state_reason != "phone-offline":
                return False
            target, reason = ag.AVAILABLE, None
        elif agent.state == ag.AVAILABLE:
            target, reason = ag.PAUSED, "phone-offline"
        else:
            return False
        with Outbox().atomic() as outbox:
            return self._move(agent, target, reason, SOURCE_TIMER, outbox)

    def run_wrapup_timer(self):
        """The events process's background task: finish due wrap-ups every second or so."""
        interval = float(self.config.get("AGENT_WRAPUP_CHECK_INTERVAL", 1.0))
        while True:
            try:
                with db_session():
                    self.finish_wrapups()
            except Exception:  # the database or Redis is down: try again next round
                logger.exception("finishing agent wrap-ups failed")
            time.sleep(interval)


def _same_or_null(field, value):
    return field.is_null() if value is None else field == value


def register(services):
    """Build the agents service; its wrap-up timer runs in the events process."""
    services.agents = AgentService(services.publisher, services.commands, services.config)
    services.background_tasks.append(services.agents.run_wrapup_timer)
