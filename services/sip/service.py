"""SipService: gateways' configuration, its application to FreeSWITCH, and their registration.

How a configuration reaches FreeSWITCH (see freeswitch/conf/README.md):
the row is committed first (password as a Fernet token), then
FREESWITCH_GATEWAY_DIR/<name>.xml is written atomically (mode 0600, password in
clear because FreeSWITCH must send it), then `sofia profile <p> rescan` (new)
or `killgw <name>` + `rescan` (changed, credentials) makes FreeSWITCH run it
(services/sip/applier.py).

When FreeSWITCH is unreachable the row and the file are kept, the answer is
202 with apply_state `pending`, and the events process applies pending
gateways as soon as FreeSWITCH answers again (and FreeSWITCH loads the file
by itself when it restarts). When FreeSWITCH refuses (e.g. no such profile),
apply_state is `failed` with FreeSWITCH's words, and the answer is 502.

Registration state comes from two places: `sofia xmlstatus gateway <name>`
(asked by GET /api/sip/status) and `sofia::gateway_state` events, which the
events process (freeswitch/events/sip.py) hands to record_gateway_state; it
stores them in SipGatewayState and they are published on the `sip` channel.
A routine refresh of a registered gateway (UNREGED, TRYING, REGISTER 200 OK,
REGED) publishes nothing and stores only which event was seen last; a failure
(FAILED/TIMEOUT, any non-2xx answer, FAIL_WAIT) is stored and published at once.
"""
import datetime
import json
import logging

import gevent
import peewee
import redis

from freeswitch.esl.connection import FreeSwitchUnavailable
from freeswitch.esl.sofia_gateways import SofiaRefused
from models import db, utcnow
from models.db import write_transaction
from models.sip import SipGateway, SipGatewayState
from services import nodes as node_registry
from services.crypto import SecretBox
from services.errors import BadGateway, Conflict, NotFound, Unavailable
from services.sip import configuration, registration
from services.sip.applier import APPLYING, FAILED, PENDING, REMOVING, GatewayApplier
from services.sip.nodes import EveryNodeControl
from services.sip.notifier import SipNotifier
from services.sip.tester import GatewayTester

logger = logging.getLogger(__name__)

# A web request applies a gateway in a few seconds (killgw, rescan, two waits
# of SofiaGatewayControl.settle_timeout): a row still marked APPLYING after
# this long was left by a request that died, and the retry loop takes it.
ABANDONED_AFTER_SECONDS = 60


class SipService:
    """Gateways: CRUD with validation, the gateway files, sofia commands, state and tests."""

    def __init__(self, config, publisher, commands, redis_conn=None):
        self.config = config
        self.notifier = SipNotifier(publisher)
        self.commands = commands
        self.redis = redis_conn
        self.box = SecretBox(config.get("SECRET_KEY") or "")
        # Gateways go to every FreeSWITCH node (and into each node's gateway folder).
        self.control = EveryNodeControl(
            dict(commands.items()) if hasattr(commands, "items")
            else {node_registry.DEFAULT_NODE: commands},
            profile=config.get("FREESWITCH_PROFILE", "external"))
        gateway_dirs = [n.gateway_dir for n in node_registry.parse_nodes(config)]
        self.applier = GatewayApplier(self.control, self.box,
                                      list(dict.fromkeys(gateway_dirs)), self.notifier)
        self.tester = GatewayTester(self.control, float(config.get("SIP_TEST_TIMEOUT", 3.0)),
                                    find=self._find, get=self.get)

    # ----- reading ---------------------------------------------------------------
    @staticmethod
    def _active():
        return SipGateway.select().where(SipGateway.apply_state != REMOVING)

    def _find(self, name):
        """The gateway of that name (not being removed), or None."""
        return self._active().where(SipGateway.name == name).first()

    def list_gateways(self):
        """Every gateway (no secrets: the schema shows only password_set), by name."""
        return list(self._active().order_by(SipGateway.name))

    def get(self, name):
        gateway = self._find(name) if isinstance(name, str) and len(name) <= 64 else None
        if gateway is None:
            raise NotFound(f"gateway {name!r} not found")
        return gateway

    def spec_of(self, gateway):
        """The GatewaySpec of a stored gateway, with its password decrypted."""
        return self.applier.spec_of(gateway)

    # ----- configuration ---------------------------------------------------------
    def configure(self, args):
        """Create or update a gateway and apply it; returns (gateway, HTTP status)."""
        name = args["name"]
        with write_transaction():
            stored = SipGateway.select().where(SipGateway.name == name).first()
            # A gateway whose removal is still pending is created afresh.
            created = stored is None or stored.apply_state == REMOVING
            gateway = stored or SipGateway(name=name)
            values = configuration.merged_values(gateway, args, created)
            configuration.check_consistency(
                values, configuration.password_after(gateway, args, created))
            for key, value in values.items():
                setattr(gateway, key, value)
            if "password" in args or created:
                gateway.password_encrypted = self.box.encrypt(args.get("password"))
            self._mark_changed(gateway, insert=stored is None)
        logger.info("SIP gateway %s %s (version %d)", name, "created" if created else "updated",
                    gateway.version)
        outcome = self.applier.apply(gateway, "sip.gateway_saved")
        return gateway, self._answer_code(outcome, 201 if created else 200)

    def change_credentials(self, args):
        """New username and/or password; FreeSWITCH re-registers (killgw + rescan)."""
        with write_transaction():
            gateway = self.get(args["name"])
            for key in ("username", "auth_username"):
                if key in args:
                    setattr(gateway, key, args[key])
            password = configuration.password_after(gateway, args, created=False)
            configuration.check_consistency(
                {"register": gateway.register, "username": gateway.username,
                 "provider": gateway.provider}, password)
            if "password" in args:
                gateway.password_encrypted = self.box.encrypt(args["password"])
            self._mark_changed(gateway, insert=False)
        logger.info("SIP gateway %s: credentials changed (version %d)", gateway.name,
                    gateway.version)
        outcome = self.applier.apply(gateway, "sip.credentials_changed")
        return gateway, self._answer_code(outcome, 200)

    def delete(self, name):
        """Remove the gateway here and from FreeSWITCH; True when FreeSWITCH was told now."""
        with write_transaction():
            gateway = SipGateway.select().where(SipGateway.name == name).first() \
                if isinstance(name, str) and len(name) <= 64 else None
            if gateway is None:
                raise NotFound(f"gateway {name!r} not found")
            gateway.apply_state, gateway.apply_detail = REMOVING, "removing from FreeSWITCH"
            gateway.version += 1
            gateway.updated_at = utcnow()
            gateway.save()
            SipGatewayState.delete().where(SipGatewayState.name == name).execute()
        done = self.applier.remove(gateway)
        logger.info("SIP gateway %s deleted%s", name, "" if done else
                    " (FreeSWITCH to be told when it answers)")
        return done

    @staticmethod
    def _mark_changed(gateway, insert):
        if not insert:
            gateway.version += 1
        gateway.apply_state, gateway.apply_detail = PENDING, APPLYING
        gateway.updated_at = utcnow()
        gateway.save(force_insert=insert)

    @staticmethod
    def _answer_code(outcome, success_code):
        if outcome.state == PENDING:
            return 202
        if outcome.state == FAILED:
            raise BadGateway(f"the gateway is saved, but FreeSWITCH did not accept it: "
                             f"{outcome.detail}")
        return success_code

    # ----- the events process: pending work ------------------------------------------
    def apply_pending(self, min_age=2.0, abandoned_after=ABANDONED_AFTER_SECONDS):
        """Apply what FreeSWITCH missed while unreachable; returns how many were handled.

        A row marked pending only because a web request is applying it right now
        (its detail is still APPLYING) is left to that request: taking it too would
        apply it twice and log a comeback of FreeSWITCH that never happened. It is
        taken only once it is older than any application takes (the request died).
        """
        now = utcnow()
        rows = [gateway for gateway in SipGateway.select().where(
                    SipGateway.apply_state.in_([PENDING, REMOVING])
                    & (SipGateway.updated_at <= now - datetime.timedelta(seconds=min_age)))
                if gateway.apply_detail != APPLYING
                or gateway.updated_at <= now - datetime.timedelta(seconds=abandoned_after)]
        if not rows or not self.control.any_reachable():
            return 0
        handled = 0
        for gateway in rows:
            why = ("FreeSWITCH was unreachable" if gateway.apply_detail != APPLYING
                   else "its application was interrupted")
            try:
                if gateway.apply_state == REMOVING:
                    handled += bool(self.applier.remove(gateway))
                    continue
                outcome = self.applier.apply(gateway, "sip.gateway_applied",
                                             announce_pending=False)
            except (Conflict, Unavailable, BadGateway) as exc:
                logger.warning("SIP gateway %s still not applied: %s", gateway.name, exc.message)
                continue
            if outcome.state == PENDING:
                continue
            handled += 1
            if outcome.state == FAILED:
                logger.warning("SIP gateway %s (retried: %s) refused by FreeSWITCH: %s",
                               gateway.name, why, outcome.detail)
            else:
                logger.info("SIP gateway %s applied on retry (%s): %s", gateway.name, why,
                            outcome.detail)
        return handled

    # ----- registration state ----------------------------------------------------------
    def record_gateway_state(self, report, outbox):
        """A GatewayStateReport: store the state, publish it (via outbox) when it is news."""
        gateway = self._find(report.name)
        if gateway is None:
            logger.debug("gateway_state of %s ignored: not a gateway managed here", report.name)
            return
        row = SipGatewayState.get_or_none(SipGatewayState.name == report.name)
        if registration.already_applied(row, report):
            logger.debug("gateway_state %s #%s of %s already applied", report.state,
                         report.sequence, report.name)
            return
        if registration.is_routine(row, report):
            # A refresh of a working registration: only remember the event was seen.
            values = registration.routine_values(report)
            SipGatewayState.update(**values).where(SipGatewayState.name == report.name).execute()
            logger.debug("gateway %s: %s (routine, not stored)", report.name, report.state)
            return
        values = registration.state_values(row, report)
        (SipGatewayState.insert(name=report.name, **values)
         .on_conflict(conflict_target=[SipGatewayState.name], update=values).execute())
        logger.debug("gateway %s: %s (ping %s)", report.name, report.state,
                     values["ping_status"])
        if registration.is_news(row, values):
            stored = SipGatewayState(name=report.name, **values)
            entry = registration.status_entry(gateway, stored, None)
            node = self.config.get("FREESWITCH_NODE")  # the events process's own node
            if node:
                entry["nodes"] = {node: {"state": entry["state"], "status": entry["status"]}}
            self.notifier.gateway_state(entry, outbox)

    def status(self):
        """The ESL connection and every gateway's registration as FreeSWITCH and its events tell."""
        gateways = self.list_gateways()
        states = {row.name: row for row in SipGatewayState.select().where(
            SipGatewayState.name.in_([g.name for g in gateways]))} if gateways else {}
        reachable = self.commands.ping()
        entries = []
        several = len(self.control.controls) > 1
        for gateway in gateways:
            view = self._freeswitch_view(gateway) if reachable and gateway.enabled else None
            entry = registration.status_entry(gateway, states.get(gateway.name), view)
            entry["nodes"] = (self.control.node_views(gateway.name) if several else {
                self.control.controls[0][0]: {k: entry[k] for k in (
                    "loaded", "state", "status", "freeswitch_error")}})
            entries.append(entry)
        nodes = self.control.esl_states()
        for node, esl in nodes.items():
            esl["events_process"] = self._events_process_state(node)
        first = next(iter(nodes))
        return {"esl": {"command_connection": self.commands.state(),
                        "freeswitch_reachable": reachable,
                        "events_process": nodes[first]["events_process"]},
                "nodes": nodes, "gateways": entries}

    def _freeswitch_view(self, gateway):
        try:
            fields = self.control.status(gateway.name)
        except FreeSwitchUnavailable:
            return None
        except SofiaRefused as exc:
            return {"error": str(exc)}
        return fields if fields is not None else {}

    def _events_process_state(self, node):
        try:
            raw = self.redis.get(node_registry.state_key(node)) if self.redis is not None else None
        except redis.RedisError:
            return {"state": "unknown", "detail": "Redis unavailable"}
        if not raw:
            return {"state": "unknown", "detail": "no report from the events process"}
        try:
            report = json.loads(raw)
        except ValueError:
            return {"state": "unknown", "detail": "unreadable report"}
        return {"state": report.get("state"), "events_applied": report.get("events_applied")}

    # ----- connection test ----------------------------------------------------------------
    def test(self, args):
        """Step by step: DNS, the transport (OPTIONS, connect, TLS, upgrade), FreeSWITCH's view."""
        return self.tester.test(args)


# ----- wiring -----------------------------------------------------------------------------
def apply_pending_task(services, interval=None):
    """Background task (events process): apply gateways FreeSWITCH missed while unreachable."""
    interval = float(interval or services.config.get("SIP_APPLY_RETRY_INTERVAL", 3.0))

    def run():
        while True:
            gevent.sleep(interval)
            try:
                with db.connection_context():
                    services.sip.apply_pending()
            except (peewee.PeeweeException, redis.RedisError) as exc:
                logger.warning("pending SIP gateways not applied this round: %s", exc)
            except Exception:  # the loop must survive anything one round meets
                logger.exception("pending SIP gateways: unexpected error")
    return run


def register(services):
    """Wire the SIP domain into the shared services (and its retry loop for the events process)."""
    sip = SipService(services.config, services.publisher, services.commands,
                     redis_conn=services.redis)
    services.sip = sip
    services.background_tasks.append(apply_pending_task(services))
    return sip
