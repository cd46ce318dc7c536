"""Agents' browser phones: the SIP credentials the service owns, FreeSWITCH's directory
file of them, what the browser gets to register, and the check that pauses an agent
whose phone dropped.

- One phone per agent, the newest wins: fetching the config (what a page does when the
  agent turns its phone on) drops the user's other registrations at FreeSWITCH
  (`flush_inbound_reg`); the page tells the agent's other tabs of the same browser, which
  switch their phone off (web/phone/phone.js).
- Credentials: one row per agent (models/agent_phone.py): the username is the agent's
  directory user (its `user/<user>` endpoint), the password 24 random URL-safe
  characters, stored Fernet-encrypted (services/crypto.py, purpose "agent-sip-password").
  Made on the first GET /api/agents/<id>/phone/config, replaced by a rotation.
- FreeSWITCH learns them from FREESWITCH_DIRECTORY_DIR/cc_agents.xml (every phone, in
  clear, mode 0600; freeswitch/esl/directory_xml.py) and `reloadxml` on every node.
  A rotation also drops the user's current registrations, so the old password stops
  working at once (the page fetches the new one and registers again).
- The check (events process, every PHONE_CHECK_INTERVAL s): an *available* agent with a
  browser phone that FreeSWITCH no longer lists as registered is paused with reason
  `phone-offline` (announced on the `agents` channel) and so is offered no calls; when
  the phone registers again the agent is made available again. Agents without a
  browser phone (desk phones) are left alone.
"""
import logging
import secrets
import time
from urllib.parse import urlsplit

import peewee

from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from freeswitch.esl.directory_xml import (
    RELOADXML,
    flush_registration_command,
    render_directory_xml,
    write_directory_file,
)
from models.agent import AVAILABLE, PAUSED, Agent
from models.agent_phone import AgentPhone
from models.db import db_session, utcnow
from services.agents.endpoints import USER, parse_endpoint
from services.crypto import SecretBox, SecretUnreadable
from services.errors import Conflict, ServiceError, Unavailable

logger = logging.getLogger(__name__)

SECRET_PURPOSE = "agent-sip-password"
OFFLINE_REASON = "phone-offline"
PASSWORD_BYTES = 18  # -> 24 URL-safe characters


def new_password():
    return secrets.token_urlsafe(PASSWORD_BYTES)


def parse_ice_servers(text):
    """PHONE_ICE_SERVERS ("stun:a:3478, turn:b:3478?transport=udp") -> [{"urls": ...}]."""
    return [{"urls": url.strip()} for url in (text or "").split(",") if url.strip()]


def sip_domain(config):
    """The domain of the phones' SIP URIs: PHONE_SIP_DOMAIN, else PHONE_WS_URL's host."""
    return config.get("PHONE_SIP_DOMAIN") or urlsplit(config.get("PHONE_WS_URL") or "").hostname


class AgentPhoneService:
    """Credentials, the directory file and the registration check of browser phones."""

    def __init__(self, agents, commands, config):
        self.agents = agents
        self.commands = commands
        self.config = config
        self.box = SecretBox(config.get("SECRET_KEY") or "", purpose=SECRET_PURPOSE)
        self.directory_dir = config.get("FREESWITCH_DIRECTORY_DIR") or ""

    # ----- credentials ---------------------------------------------------
    def _check_ready(self):
        if not self.directory_dir or not self.config.get("PHONE_WS_URL"):
            raise Unavailable("browser phones are not set up: FREESWITCH_DIRECTORY_DIR and "
                              "PHONE_WS_URL must be set (README, Browser phone)",
                              error_id="phone_not_configured")

    @staticmethod
    def username_of(agent):
        """The agent's directory user; 409 for an agent whose endpoint is not user/<user>."""
        parsed = parse_endpoint(agent.endpoint)
        if parsed.kind != USER:
            raise Conflict(f"agent {agent.id}'s endpoint ({agent.endpoint}) is not a directory "
                           "user (user/<user>); only those can be a browser phone",
                           error_id="agent_phone_not_user")
        return parsed.user

    def _store(self, agent, username, password):
        """Insert or replace the agent's row; 409 when another agent has the user."""
        now = utcnow()
        values = {"username": username, "password_encrypted": self.box.encrypt(password),
                  "rotated_at": now}
        try:
            with AgentPhone._meta.database.atomic():
                updated = AgentPhone.update(**values).where(
                    AgentPhone.agent == agent.id).execute()
                if not updated:
                    AgentPhone.create(agent=agent.id, created_at=now, **values)
        except peewee.IntegrityError:
            raise Conflict(f"directory user {username} is already another agent's browser "
                           "phone", error_id="agent_phone_user_taken") from None
        return AgentPhone.get_by_id(agent.id)

    def credentials(self, agent_id, rotate=False):
        """(AgentPhone, password): made when missing, new when asked or the endpoint changed."""
        self._check_ready()
        agent = self.agents.get(agent_id)
        username = self.username_of(agent)
        phone = AgentPhone.get_or_none(AgentPhone.agent == agent.id)
        password = None
        if phone is not None and not rotate and phone.username == username:
            try:
                password = self.box.decrypt(phone.password_encrypted)
            except SecretUnreadable:
                logger.warning("agent %s's phone password is unreadable (SECRET_KEY changed); "
                               "making a new one", agent.id)
        if password is None:
            old_username = phone.username if phone is not None else None
            password = new_password()
            phone = self._store(agent, username, password)
            self.sync_directory()
            self._flush(old_username or username)
        return agent, phone, password

    def rotate(self, agent_id):
        """A new password, shown once; the phone's current registrations are dropped."""
        agent, phone, password = self.credentials(agent_id, rotate=True)
        return {"agent_id": agent.id, "username": phone.username, "password": password,
                "rotated_at": phone.rotated_at}

    def phone_config(self, agent_id):
        """What the browser needs to register as the agent's phone."""
        agent, phone, password = self.credentials(agent_id)
        # Newest wins: the page asking turns the phone on; the user's other registrations
        # (another tab or browser) are dropped at FreeSWITCH.
        self._flush(phone.username)
        domain = sip_domain(self.config)
        return {"agent_id": agent.id, "ws_url": self.config["PHONE_WS_URL"],
                "sip_uri": f"sip:{phone.username}@{domain}", "username": phone.username,
                "password": password, "display_name": agent.name,
                "ice_servers": parse_ice_servers(self.config.get("PHONE_ICE_SERVERS")),
                "register_expires": int(self.config.get("PHONE_REGISTER_EXPIRES", 120)),
                "rotated_at": phone.rotated_at}

    # ----- FreeSWITCH ----------------------------------------------------
    def _nodes(self):
        if self.commands is None:
            return []
        items = getattr(self.commands, "items", None)
        return [commands for _, commands in items()] if items else [self.commands]

    def sync_directory(self):
        """Write cc_agents.xml with every browser phone, then `reloadxml` on each node."""
        if not self.directory_dir:
            return False
        users = []
        for phone in AgentPhone.select(AgentPhone, Agent).join(Agent):
            try:
                users.append((phone.username, self.box.decrypt(phone.password_encrypted),
                              phone.agent.name))
            except SecretUnreadable:
                logger.warning("agent %s's phone password is unreadable; left out of the "
                               "directory until rotated", phone.agent_id)
        write_directory_file(self.directory_dir, render_directory_xml(users))
        for commands in self._nodes():
            try:
                commands.api(RELOADXML)
            except FreeSwitchUnavailable as exc:
                raise Unavailable(f"FreeSWITCH is unreachable; the directory file is written "
                                  f"and is read at its next reloadxml ({exc})",
                                  headers={"Retry-After": "5"},
                                  error_id="freeswitch_unavailable") from None
        return True

    def _flush(self, username):
        domain = sip_domain(self.config)
        profile = self.config.get("PHONE_SIP_PROFILE", "internal")
        for commands in self._nodes():
            try:
                commands.api(flush_registration_command(profile, username, domain))
            except (FreeSwitchError, FreeSwitchUnavailable, ValueError) as exc:
                logger.info("could not flush %s's registrations: %s", username, exc)

    # ----- the registration check ----------------------------------------
    def check_phones(self):
        """Pause available agents whose browser phone dropped, resume those whose came back.

        Returns (paused, resumed) agent ids; one `show registrations` per round.
        """
        rows = list(AgentPhone.select(AgentPhone, Agent).join(Agent).where(
            Agent.state.in_((AVAILABLE, PAUSED))))
        # Only agents whose endpoint is still their browser phone's user (an agent moved to
        # a desk phone keeps its row until the next config fetch re-keys or ignores it).
        watched = [p for p in rows if (p.agent.state == AVAILABLE
                                       or p.agent.state_reason == OFFLINE_REASON)
                   and p.agent.endpoint in (f"user/{p.username}",)]
        if not watched:
            return [], []
        registered = {user for user, _realm in self.agents.phones.registered_users()}
        paused, resumed = [], []
        for phone in watched:
            online = phone.username in registered
            if phone.agent.state == AVAILABLE and not online:
                if self.agents.phone_status_changed(phone.agent, False):
                    paused.append(phone.agent_id)
            elif phone.agent.state == PAUSED and online:
                if self.agents.phone_status_changed(phone.agent, True):
                    resumed.append(phone.agent_id)
        return paused, resumed

    def run_phone_check(self):
        """The events process's background task: the directory once, then the check."""
        interval = float(self.config.get("PHONE_CHECK_INTERVAL", 5.0))
        if interval <= 0:
            return
        synced = False
        while True:
            try:
                with db_session():
                    if not synced:
                        synced = self.sync_directory() or True
                    self.check_phones()
            except ServiceError as exc:  # FreeSWITCH away: the next round tries again
                logger.info("browser phone check skipped: %s", exc)
            except Exception:  # the database or Redis is down: try again next round
                logger.exception("browser phone check failed")
            time.sleep(interval)


def register(services):
    """Build the browser-phone service on the agents service; its check runs in events."""
    services.agent_phones = AgentPhoneService(services.agents, services.commands,
                                              services.config)
    services.background_tasks.append(services.agent_phones.run_phone_check)
