"""SIP gateways: provider presets, live configuration of FreeSWITCH, registration state, tests.

How a configuration reaches FreeSWITCH (see freeswitch/conf/README.md):
the row is committed first (password as a Fernet token), then
FREESWITCH_GATEWAY_DIR/<name>.xml is written atomically (mode 0600, password in
clear because FreeSWITCH must send it), then `sofia profile <p> rescan` (new)
or `killgw <name>` + `rescan` (changed, credentials) makes FreeSWITCH run it.

When FreeSWITCH is unreachable the row and the file are kept, the answer is
202 with apply_state `pending`, and the events process applies pending
gateways as soon as FreeSWITCH answers again (and FreeSWITCH loads the file
by itself when it restarts). When FreeSWITCH refuses (e.g. no such profile),
apply_state is `failed` with FreeSWITCH's words, and the answer is 502.

Registration state comes from two places: `sofia xmlstatus gateway <name>`
(asked by GET /api/sip/status) and `sofia::gateway_state` events, which the
events process records in SipGatewayState and publishes on the `sip` channel.
"""
import datetime
import json
import logging
import time

import gevent
import peewee
import redis

from freeswitch.esl import sip_probe
from freeswitch.esl.connection import FreeSwitchUnavailable
from freeswitch.esl.gateway_xml import (
    DEFAULT_PORTS,
    GatewaySpec,
    InvalidGatewayValue,
    OutsideGatewayDir,
    SofiaGatewayControl,
    SofiaRefused,
    remove_gateway_file,
    render_gateway_xml,
    split_hostport,
    write_gateway_file,
)
from models import db, utcnow
from models.db import write_transaction
from models.sip import SipGateway, SipGatewayState
from services.crypto import SecretBox, SecretUnreadable
from services.errors import BadGateway, Conflict, NotFound, Unavailable, Unprocessable

logger = logging.getLogger(__name__)

APPLIED, PENDING, FAILED, REMOVING = SipGateway.APPLY_STATES
CUSTOM = "custom"

# ----- provider presets -------------------------------------------------------------
PROVIDER_PRESETS = {
    "twilio": {
        "name": "Twilio Elastic SIP Trunking",
        "host_pattern": "{trunk-name}.pstn.twilio.com",
        "example_host": "example.pstn.twilio.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061},
        "register": False, "codecs": ["PCMU", "PCMA"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "caller_id"],
        "note": "Host: the trunk's Termination SIP URI ({trunk-name}.pstn.twilio.com, or a "
                "regional one such as {trunk-name}.pstn.ireland.twilio.com). Twilio does not "
                "accept REGISTER: leave register off and either add this server's public IP to "
                "the trunk's IP Access Control List, or give the username/password of a "
                "Credential List attached to the trunk. Caller id: a Twilio number or verified "
                "caller id in E.164 (+15551230000). TLS (port 5061) needs Secure Trunking.",
    },
    "ringcentral": {
        "name": "RingCentral",
        "host_pattern": "sip.ringcentral.com",
        "example_host": "sip.ringcentral.com",
        "outbound_proxy_pattern": "sip{NN}.ringcentral.com:5090",
        "example_outbound_proxy": "sip20.ringcentral.com:5090",
        "transport": "udp", "transports": ["udp", "tcp"],
        "ports": {"udp": 5060, "tcp": 5060},
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 600,
        "caller_id_in_from": False,
        "requires": ["username", "auth_username", "password", "outbound_proxy"],
        "note": "From the RingCentral admin portal, device 'Existing Phone' / 'Other phone' "
                "SIP settings: User Name -> username (the phone number), Authorization ID -> "
                "auth_username, Password -> password, Outbound Proxy (e.g. "
                "sip20.ringcentral.com:5090, depends on your region) -> outbound_proxy. "
                "The caller id is set in RingCentral, not here.",
    },
    "vonage": {
        "name": "Vonage (Nexmo) SIP Trunking",
        "host_pattern": "sip.nexmo.com",
        "example_host": "sip.nexmo.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061},
        "register": False, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["username", "password", "caller_id"],
        "note": "Outbound calls authenticate with digest auth: username = your Vonage API "
                "key, password = your API secret. Host sip.nexmo.com (or a regional host "
                "such as sip-us.nexmo.com). Caller id: a Vonage number of your account in "
                "E.164. Vonage trunks do not use REGISTER.",
    },
    "asterisk": {
        "name": "Asterisk",
        "host_pattern": "{asterisk-host}",
        "example_host": "pbx.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 8088, "wss": 8089},
        "ws_path": "/ws",
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "username", "password"],
        "note": "Create a PJSIP endpoint for this server on the Asterisk box (an auth section "
                "with username/password and an aor with max_contacts >= 1) and give that "
                "username and password here; host is the Asterisk server's name or IP. "
                "WebSocket transports use Asterisk's HTTP server (8088 ws / 8089 wss, path /ws).",
    },
    "freepbx": {
        "name": "FreePBX",
        "host_pattern": "{freepbx-host}",
        "example_host": "freepbx.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 8088, "wss": 8089},
        "ws_path": "/ws",
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "username", "password"],
        "note": "In FreePBX add a PJSIP extension (or a trunk with registration 'Receive') for "
                "this server: username = the extension number, password = its secret. PJSIP "
                "listens on 5060; if chan_sip is also enabled it usually takes 5160 instead.",
    },
    CUSTOM: {
        "name": "Other SIP provider or PBX",
        "host_pattern": "{sip-host}",
        "example_host": "sip.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": dict(DEFAULT_PORTS),
        "register": True, "codecs": ["PCMU", "PCMA"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host"],
        "note": "Any SIP registrar or trunk: host (realm), transport and port, and the "
                "credentials it gave you.",
    },
}

CONFIG_FIELDS = ("provider", "host", "port", "transport", "username", "auth_username",
                 "register", "caller_id", "codecs", "expiry", "outbound_proxy", "enabled")

# sofia::gateway_state State -> the `sip` channel message type.
STATE_EVENT_TYPES = {
    "REGED": "sip.registered", "REGISTER": "sip.trying", "TRYING": "sip.trying",
    "UNREGED": "sip.unregistered", "UNREGISTER": "sip.unregistered",
    "EXPIRED": "sip.unregistered", "FAILED": "sip.failed", "TIMEOUT": "sip.failed",
    "FAIL_WAIT": "sip.fail_wait", "NOREG": "sip.noreg", "DOWN": "sip.down",
}
HEALTHY_STATES = ("REGED", "NOREG")




def preset_of(provider):
    return PROVIDER_PRESETS.get(provider or CUSTOM, PROVIDER_PRESETS[CUSTOM])


def provider_list():
    """The presets as GET /api/sip/providers shows them."""
    out = []
    for key, preset in PROVIDER_PRESETS.items():
        transport = preset["transport"]
        out.append({"id": key, **preset, "port": preset["ports"][transport]})
    return out


def _field_errors(errors):
    """A 422 in flask-smorest's shape: {"errors": {"json": {field: [message]}}}."""
    return Unprocessable("the gateway configuration is not valid",
                         errors={"json": {k: [v] if isinstance(v, str) else v
                                          for k, v in errors.items()}})


class SipNotifier:
    """The `sip` channel's messages; payloads are the REST dumps (never a password)."""

    def __init__(self, notifier):
        self.notifier = notifier

    def gateway_changed(self, gateway, event_type):
        from blueprints.sip.schemas import GatewaySchema
        return self.notifier.publish("sip", event_type, GatewaySchema().dump(gateway))

    def gateway_deleted(self, name):
        return self.notifier.publish("sip", "sip.gateway_deleted", {"name": name})

    def gateway_state(self, entry):
        from blueprints.sip.schemas import GatewayStatusSchema
        event_type = STATE_EVENT_TYPES.get(entry.get("state"), "sip.state")
        return self.notifier.publish("sip", event_type, GatewayStatusSchema().dump(entry))


class ApplyOutcome:
    """What happened when a configuration was pushed to FreeSWITCH."""

    def __init__(self, state, detail):
        self.state, self.detail = state, detail


class SipService:
    """Gateways: CRUD with validation, the gateway files, sofia commands, state and tests."""

    def __init__(self, config, notifier, commands, redis_conn=None):
        self.config = config
        self.notifier = SipNotifier(notifier)
        self.commands = commands
        self.redis = redis_conn
        self.gateway_dir = config.get("FREESWITCH_GATEWAY_DIR")
        self.box = SecretBox(config.get("SECRET_KEY") or "")
        self.control = SofiaGatewayControl(commands, profile=config.get("FREESWITCH_PROFILE",
                                                                        "external"))
        self.test_timeout = float(config.get("SIP_TEST_TIMEOUT", 3.0))

    # ----- reading ---------------------------------------------------------------
    @staticmethod
    def _active():
        return SipGateway.select().where(SipGateway.apply_state != REMOVING)

    def list_gateways(self):
        """Every gateway (no secrets: the schema shows only password_set), by name."""
        return list(self._active().order_by(SipGateway.name))

    def get(self, name):
        gateway = None
        if isinstance(name, str) and len(name) <= 64:
            gateway = self._active().where(SipGateway.name == name).first()
        if gateway is None:
            raise NotFound(f"gateway {name!r} not found")
        return gateway

    # ----- configuration ---------------------------------------------------------
    def configure(self, args):
        """Create or update a gateway and apply it; returns (gateway, HTTP status)."""
        name = args["name"]
        with write_transaction():
            stored = SipGateway.select().where(SipGateway.name == name).first()
            # A gateway whose removal is still pending is created afresh.
            created = stored is None or stored.apply_state == REMOVING
            gateway = stored or SipGateway(name=name)
            values = self._merged(gateway, args, created)
            self._check_consistency(values, self._password_after(gateway, args, created))
            for key, value in values.items():
                setattr(gateway, key, value)
            if "password" in args or created:
                gateway.password_encrypted = self.box.encrypt(args.get("password"))
            self._mark_changed(gateway, insert=stored is None)
        logger.info("SIP gateway %s %s (version %d)", name, "created" if created else "updated",
                    gateway.version)
        outcome = self._apply(gateway)
        self.notifier.gateway_changed(gateway, "sip.gateway_saved")
        return gateway, self._answer_code(outcome, 201 if created else 200)

    def change_credentials(self, args):
        """New username and/or password; FreeSWITCH re-registers (killgw + rescan)."""
        with write_transaction():
            gateway = self.get(args["name"])
            for key in ("username", "auth_username"):
                if key in args:
                    setattr(gateway, key, args[key])
            password = self._password_after(gateway, args, created=False)
            self._check_consistency({"register": gateway.register, "username": gateway.username,
                                     "provider": gateway.provider}, password)
            if "password" in args:
                gateway.password_encrypted = self.box.encrypt(args["password"])
            self._mark_changed(gateway, insert=False)
        logger.info("SIP gateway %s: credentials changed (version %d)", gateway.name,
                    gateway.version)
        outcome = self._apply(gateway)
        self.notifier.gateway_changed(gateway, "sip.credentials_changed")
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
        done = self._remove(gateway)
        logger.info("SIP gateway %s deleted%s", name, "" if done else
                    " (FreeSWITCH to be told when it answers)")
        return done

    @staticmethod
    def _merged(gateway, args, created):
        """The configuration fields after this request: given values, else stored, else preset."""
        provider = args.get("provider") or (CUSTOM if created else gateway.provider)
        preset = preset_of(provider)
        values = {"provider": provider}
        for key in CONFIG_FIELDS[1:]:
            if key in args:
                values[key] = args[key]
            elif not created:
                values[key] = getattr(gateway, key)
            else:
                values[key] = {"port": None, "register": preset["register"],
                               "codecs": preset["codecs"], "expiry": preset["expiry"],
                               "transport": preset["transport"], "enabled": True}.get(key)
        if values.get("host") is None:
            raise _field_errors({"host": "Missing data for required field."})
        if "port" not in args:
            old_default = preset_of(gateway.provider).get("ports", {}).get(gateway.transport) \
                if not created else None
            if created or (values["transport"] != gateway.transport
                           and gateway.port == old_default):
                values["port"] = preset["ports"].get(values["transport"],
                                                     DEFAULT_PORTS[values["transport"]])
        return values

    def _password_after(self, gateway, args, created):
        if "password" in args:
            return args["password"]
        if created or not gateway.password_encrypted:
            return None
        return "(stored)"

    @staticmethod
    def _check_consistency(values, password):
        errors = {}
        preset = preset_of(values.get("provider"))
        transport = values.get("transport")
        if transport is not None and transport not in preset["transports"]:
            errors["transport"] = (f"{preset['name']} supports "
                                   f"{', '.join(preset['transports'])}")
        if values.get("register"):
            if not values.get("username"):
                errors["username"] = "required when register is true"
            if not password:
                errors["password"] = "required when register is true"
        if errors:
            raise _field_errors(errors)

    @staticmethod
    def _mark_changed(gateway, insert):
        if not insert:
            gateway.version += 1
        gateway.apply_state, gateway.apply_detail = PENDING, "being applied to FreeSWITCH"
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

    # ----- applying to FreeSWITCH ---------------------------------------------------
    def spec_of(self, gateway):
        """The GatewaySpec of a stored gateway, with its password decrypted."""
        return GatewaySpec(
            name=gateway.name, host=gateway.host, port=gateway.port,
            transport=gateway.transport, username=gateway.username,
            auth_username=gateway.auth_username,
            password=self.box.decrypt(gateway.password_encrypted),
            register=gateway.register, caller_id=gateway.caller_id,
            caller_id_in_from=preset_of(gateway.provider)["caller_id_in_from"],
            codecs=gateway.codecs or [], expiry=gateway.expiry,
            outbound_proxy=gateway.outbound_proxy)

    def _write_file(self, gateway):
        if gateway.enabled:
            write_gateway_file(self.gateway_dir, gateway.name,
                               render_gateway_xml(self.spec_of(gateway)))
        else:
            remove_gateway_file(self.gateway_dir, gateway.name)

    def _apply(self, gateway):
        """File, then FreeSWITCH; records and returns the outcome (never raises for FreeSWITCH)."""
        try:
            self._write_file(gateway)
        except SecretUnreadable:
            self._record(gateway, FAILED, "the stored password cannot be decrypted (SECRET_KEY "
                                          "changed?); set it again with PUT /api/sip/credentials")
            raise Conflict(gateway.apply_detail) from None
        except (OSError, OutsideGatewayDir, InvalidGatewayValue) as exc:
            detail = f"cannot write the gateway file in FREESWITCH_GATEWAY_DIR: " \
                     f"{getattr(exc, 'strerror', None) or exc}"
            self._record(gateway, FAILED, detail)
            logger.error("SIP gateway %s: %s", gateway.name, detail)
            raise Unavailable(f"the gateway is saved, but {detail}") from None
        try:
            action = (self.control.load(gateway.name) if gateway.enabled
                      else self.control.unload(gateway.name))
        except FreeSwitchUnavailable:
            return self._record(gateway, PENDING,
                                "FreeSWITCH is unreachable: the gateway file is written and "
                                "will be applied when FreeSWITCH answers again")
        except SofiaRefused as exc:
            logger.warning("SIP gateway %s: %s", gateway.name, exc)
            return self._record(gateway, FAILED, str(exc)[:255])
        return self._record(gateway, APPLIED, f"{action} in FreeSWITCH")

    @staticmethod
    def _record(gateway, state, detail):
        """Store the outcome, unless a newer version of the gateway was saved meanwhile."""
        now = utcnow()
        values = {SipGateway.apply_state: state, SipGateway.apply_detail: detail[:255]}
        if state == APPLIED:
            values[SipGateway.applied_at] = now
        (SipGateway.update(values)
         .where((SipGateway.id == gateway.id) & (SipGateway.version == gateway.version))
         .execute())
        gateway.apply_state, gateway.apply_detail = state, detail[:255]
        if state == APPLIED:
            gateway.applied_at = now
        return ApplyOutcome(state, detail)

    def _remove(self, gateway):
        """Delete the file, tell FreeSWITCH, drop the row; False while FreeSWITCH is away."""
        try:
            remove_gateway_file(self.gateway_dir, gateway.name)
        except (OSError, OutsideGatewayDir) as exc:
            raise Unavailable(f"cannot remove the gateway file: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            self.control.unload(gateway.name)
        except FreeSwitchUnavailable:
            self._record(gateway, REMOVING, "FreeSWITCH is unreachable: it will be told when it "
                                            "answers again (the file is already deleted)")
            return False
        except SofiaRefused as exc:
            self._record(gateway, REMOVING, str(exc))
            raise BadGateway(f"the gateway file is deleted, but FreeSWITCH refused to drop it: "
                             f"{exc}") from None
        deleted = (SipGateway.delete()
                   .where((SipGateway.id == gateway.id) & (SipGateway.version == gateway.version))
                   .execute())
        if deleted:
            self.notifier.gateway_deleted(gateway.name)
        return True

    # ----- the events process: pending work ------------------------------------------
    def apply_pending(self, min_age=2.0):
        """Apply what FreeSWITCH missed while unreachable; returns how many were handled."""
        cutoff = utcnow() - datetime.timedelta(seconds=min_age)
        rows = list(SipGateway.select().where(SipGateway.apply_state.in_([PENDING, REMOVING])
                                              & (SipGateway.updated_at <= cutoff)))
        if not rows or not self.commands.ping():
            return 0
        handled = 0
        for gateway in rows:
            try:
                if gateway.apply_state == REMOVING:
                    handled += bool(self._remove(gateway))
                    continue
                outcome = self._apply(gateway)
            except (Conflict, Unavailable, BadGateway) as exc:
                logger.warning("SIP gateway %s still not applied: %s", gateway.name, exc.message)
                continue
            if outcome.state != PENDING:
                handled += 1
                logger.info("SIP gateway %s applied after FreeSWITCH came back: %s",
                            gateway.name, outcome.detail)
                self.notifier.gateway_changed(gateway, "sip.gateway_applied")
        return handled

    # ----- registration state ----------------------------------------------------------
    def on_gateway_state(self, event, outbox):
        """CUSTOM sofia::gateway_state: record the state, publish it after the commit."""
        name = event.get("Gateway")
        state = (event.get("State") or "").upper()
        if not name or not state:
            return
        gateway = self._active().where(SipGateway.name == name).first()
        if gateway is None:
            logger.debug("gateway_state of %s ignored: not a gateway managed here", name)
            return
        core_uuid = event.get("Core-UUID")
        sequence = _int(event.get("Event-Sequence")) or 0
        row = SipGatewayState.get_or_none(SipGatewayState.name == name)
        if row is not None and row.core_uuid == core_uuid and sequence and \
                sequence <= row.event_seq:
            logger.debug("gateway_state %s #%s of %s already applied", state, sequence, name)
            return
        at = _event_time(event)
        values = _state_values(row, state, event, at)
        values.update(core_uuid=core_uuid, event_seq=sequence, event_at=at)
        (SipGatewayState.insert(name=name, **values)
         .on_conflict(conflict_target=[SipGatewayState.name], update=values).execute())
        changed = row is None or row.state != state or \
            row.ping_status != values["ping_status"] or state == "FAILED"
        logger.debug("gateway %s: %s (ping %s)", name, state, values["ping_status"])
        if changed:
            stored = SipGatewayState(name=name, **values)
            outbox.add(self.notifier.gateway_state, self._status_entry(gateway, stored, None))

    def status(self):
        """The ESL connection and every gateway's registration as FreeSWITCH and its events tell."""
        gateways = self.list_gateways()
        states = {row.name: row for row in SipGatewayState.select().where(
            SipGatewayState.name.in_([g.name for g in gateways]))} if gateways else {}
        reachable = self.commands.ping()
        entries = []
        for gateway in gateways:
            view = self._freeswitch_view(gateway) if reachable and gateway.enabled else None
            entries.append(self._status_entry(gateway, states.get(gateway.name), view))
        return {"esl": {"command_connection": self.commands.state(),
                        "freeswitch_reachable": reachable,
                        "events_process": self._events_process_state()},
                "gateways": entries}

    def _freeswitch_view(self, gateway):
        try:
            fields = self.control.status(gateway.name)
        except FreeSwitchUnavailable:
            return None
        except SofiaRefused as exc:
            return {"error": str(exc)}
        return fields if fields is not None else {}

    def _events_process_state(self):
        from services.health import EVENTS_STATE_KEY
        try:
            raw = self.redis.get(EVENTS_STATE_KEY) if self.redis is not None else None
        except redis.RedisError:
            return {"state": "unknown", "detail": "Redis unavailable"}
        if not raw:
            return {"state": "unknown", "detail": "no report from the events process"}
        try:
            report = json.loads(raw)
        except ValueError:
            return {"state": "unknown", "detail": "unreadable report"}
        return {"state": report.get("state"), "events_applied": report.get("events_applied")}

    @staticmethod
    def _status_entry(gateway, state_row, view):
        """One gateway's status. view: xmlstatus fields, {} = not loaded, None = not asked."""
        entry = {"name": gateway.name, "provider": gateway.provider, "enabled": gateway.enabled,
                 "register": gateway.register, "transport": gateway.transport,
                 "apply_state": gateway.apply_state, "apply_detail": gateway.apply_detail,
                 "loaded": None, "state": None, "status": None, "ping_status": None,
                 "ping_time_ms": None, "retry": None, "last_change": None,
                 "last_event_at": None, "failure_reason": None, "failure_status_code": None,
                 "failure_at": None, "source": "none", "freeswitch_error": None}
        if state_row is not None:
            entry.update(state=state_row.state, ping_status=state_row.ping_status,
                         last_change=state_row.changed_at, last_event_at=state_row.event_at,
                         failure_reason=state_row.failure_reason,
                         failure_status_code=state_row.status_code,
                         failure_at=state_row.failure_at, source="events")
        if view is not None and "error" in view:
            entry["freeswitch_error"] = view["error"]
        elif view is not None:
            entry["loaded"] = bool(view)
            if view:
                entry.update(state=view.get("state"), status=view.get("status"),
                             ping_time_ms=_float(view.get("pingtime")),
                             retry=view.get("retry"), source="freeswitch")
            else:
                entry.update(state=None, status=None, source="freeswitch")
        if entry["status"] is None and entry["ping_status"] is not None:
            entry["status"] = entry["ping_status"]
        entry["registered"] = entry["state"] == "REGED"
        if entry["state"] in HEALTHY_STATES and entry["status"] != "DOWN":
            entry["failure_reason"] = None  # a past failure, no longer the current story
        return entry

    # ----- connection test ----------------------------------------------------------------
    def test(self, args):
        """Step by step: DNS, the transport (OPTIONS, connect, TLS, upgrade), FreeSWITCH's view."""
        timeout = float(args.get("timeout") or self.test_timeout)
        host, port, transport, name, ws_path = self._test_target(args)
        started = time.monotonic()
        steps = self._network_steps(host, port, transport, timeout, ws_path,
                                    args.get("verify_tls", True))
        steps.append(self._freeswitch_step(name, timeout))
        dumped = [s.as_dict() for s in steps]
        return {"gateway": name, "target": {"host": host, "port": port, "transport": transport},
                "ok": all(s.ok is not False for s in steps) and any(s.ok for s in steps),
                "steps": dumped,
                "time_ms": round((time.monotonic() - started) * 1000, 2)}

    def _test_target(self, args):
        """(host, port, transport, saved name or None, ws path) of the peer to test."""
        given = {k: v for k, v in args.items() if k not in ("timeout", "verify_tls")}
        if set(given) == {"name"}:
            gateway = self.get(args["name"])
            proxy, name = gateway.outbound_proxy, gateway.name
            host, port, transport = gateway.host, gateway.port, gateway.transport
            provider = gateway.provider
        else:
            if not given.get("host"):
                raise _field_errors({"host": "give a saved gateway's name alone, or a host "
                                             "(and port, transport) to test"})
            provider = given.get("provider") or CUSTOM
            preset = preset_of(provider)
            transport = given.get("transport") or preset["transport"]
            host, proxy, name = given["host"], given.get("outbound_proxy"), None
            port = given.get("port") or preset["ports"].get(transport, DEFAULT_PORTS[transport])
            if given.get("name"):
                saved = self._active().where(SipGateway.name == given["name"]).first()
                name = saved.name if saved is not None else None
        if proxy:
            # SIP goes to the outbound proxy: that is the peer to reach.
            proxy_host, proxy_port = split_hostport(proxy)
            host, port = proxy_host, proxy_port or DEFAULT_PORTS[transport]
        return host, port, transport, name, preset_of(provider).get("ws_path", "/")

    @staticmethod
    def _network_steps(host, port, transport, timeout, ws_path, verify_tls):
        dns, addresses = sip_probe.resolve(host, port, transport, timeout)
        steps = [dns]
        later = {"udp": ["sip_options"], "tcp": ["tcp_connect", "sip_options"],
                 "tls": ["tcp_connect", "tls_handshake", "sip_options"],
                 "ws": ["tcp_connect", "websocket_upgrade"],
                 "wss": ["tcp_connect", "tls_handshake", "websocket_upgrade"]}[transport]
        if not dns.ok:
            return steps + [sip_probe.skipped(s, "DNS resolution failed") for s in later]
        family, address = addresses[0]
        if transport == "udp":
            return steps + [sip_probe.options_udp(address, family, port, host, timeout)]
        connect, sock = sip_probe.tcp_connect(address, family, port, timeout)
        steps.append(connect)
        try:
            if sock is not None and transport in ("tls", "wss"):
                handshake, tls = sip_probe.tls_handshake(sock, host, timeout, verify_tls)
                steps.append(handshake)
                sock = tls or sock
                if tls is None:
                    sock.close()
                    sock = None
            for name in later[len(steps) - 1:]:
                if sock is None:
                    steps.append(sip_probe.skipped(name, "no connection"))
                elif name == "sip_options":
                    steps.append(sip_probe.options_stream(sock, host, port, transport, timeout))
                else:
                    steps.append(sip_probe.websocket_upgrade(sock, host, port, timeout,
                                                             path=ws_path,
                                                             secure=transport == "wss"))
        finally:
            if sock is not None:
                sock.close()
        return steps

    def _freeswitch_step(self, name, timeout):
        step = "freeswitch"
        if name is None:
            return sip_probe.skipped(step, "not a saved gateway: FreeSWITCH does not know it")
        started = time.monotonic()

        def elapsed():
            return (time.monotonic() - started) * 1000

        try:
            with gevent.Timeout(timeout + 0.5, FreeSwitchUnavailable("no answer")):
                view = self.control.status(name)
        except FreeSwitchUnavailable as exc:
            return sip_probe.ProbeStep(step, False, f"FreeSWITCH unreachable: {exc}", elapsed())
        except SofiaRefused as exc:
            return sip_probe.ProbeStep(step, False, str(exc), elapsed())
        if view is None:
            return sip_probe.ProbeStep(step, False, f"FreeSWITCH has no gateway {name} loaded",
                                       elapsed(), {"loaded": False})
        state, status = view.get("state"), view.get("status")
        ok = state in HEALTHY_STATES and status == "UP"
        detail = f"state {state}, status {status}, ping {view.get('pingtime')} ms"
        if view.get("retry"):
            detail += f", retry in {view['retry']}"
        return sip_probe.ProbeStep(step, ok, detail, elapsed(),
                                   {"loaded": True, "state": state, "gateway_status": status})


# ----- helpers of the event handler -------------------------------------------------------
def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _event_time(event):
    """Event-Date-Timestamp (microseconds since the epoch) as naive UTC; now if absent."""
    micros = _int(event.get("Event-Date-Timestamp"))
    if not micros:
        return utcnow()
    return datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.UTC) \
        .replace(tzinfo=None)


def _state_values(row, state, event, at):
    """The SipGatewayState columns after this event (failure kept until a healthy state)."""
    status_code = _int(event.get("Status"))
    phrase = (event.get("Phrase") or "").strip() or None
    values = {"state": state, "ping_status": event.get("Ping-Status") or None,
              "status_code": row.status_code if row else None,
              "phrase": row.phrase if row else None,
              "failure_reason": row.failure_reason if row else None,
              "failure_at": row.failure_at if row else None,
              "changed_at": at if row is None or row.state != state else row.changed_at}
    if state in ("FAILED", "TIMEOUT") or status_code:
        reason = " ".join(str(p) for p in (status_code, phrase) if p) or \
            ("registration timed out" if state == "TIMEOUT" else "registration failed")
        values.update(status_code=status_code, phrase=phrase and phrase[:128],
                      failure_reason=reason[:160], failure_at=at)
    elif state == "REGED":
        values.update(status_code=None, phrase=None, failure_reason=None)
    return values


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
