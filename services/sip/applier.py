"""Putting a stored gateway into effect: its file, then sofia commands; the outcome recorded."""
import logging

from freeswitch.esl.connection import FreeSwitchUnavailable
from freeswitch.esl.gateway_xml import (
    GatewaySpec,
    InvalidGatewayValue,
    OutsideGatewayDir,
    remove_gateway_file,
    render_gateway_xml,
    write_gateway_file,
)
from freeswitch.esl.sofia_gateways import SofiaRefused
from models import utcnow
from models.sip import SipGateway
from services.crypto import SecretUnreadable
from services.errors import BadGateway, Conflict, Unavailable
from services.outbox import Outbox
from services.sip.presets import preset_of

logger = logging.getLogger(__name__)

APPLIED, PENDING, FAILED, REMOVING = SipGateway.APPLY_STATES
# The detail of a row a request is applying now (pending, but FreeSWITCH not known away).
APPLYING = "being applied to FreeSWITCH"


class ApplyOutcome:
    """What happened when a configuration was pushed to FreeSWITCH."""

    def __init__(self, state, detail):
        self.state, self.detail = state, detail


class GatewayApplier:
    """Writes the gateway files and tells FreeSWITCH; never raises for FreeSWITCH's answers."""

    def __init__(self, control, box, gateway_dir, notifier):
        self.control = control
        self.box = box
        # One folder, or a list: each FreeSWITCH node's (several nodes may share one).
        self.gateway_dirs = [gateway_dir] if isinstance(gateway_dir, str) else list(gateway_dir)
        self.notifier = notifier

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

    def apply(self, gateway, event_type, announce_pending=True):
        """File, then FreeSWITCH; records the outcome and announces it as event_type.

        A pending outcome is announced only when announce_pending (the retry
        loop stays quiet while FreeSWITCH is still away). A file that cannot be
        written raises Conflict or Unavailable, announced by nobody.
        """
        state, detail = self._put_into_effect(gateway)
        outbox = Outbox()
        with outbox.atomic():
            outcome = self.record(gateway, state, detail)
            if announce_pending or state != PENDING:
                self.notifier.gateway_changed(gateway, event_type, outbox)
        return outcome

    def _put_into_effect(self, gateway):
        try:
            self._write_file(gateway)
        except SecretUnreadable:
            self.record(gateway, FAILED, "the stored password cannot be decrypted (SECRET_KEY "
                                         "changed?); set it again with PUT /api/sip/credentials")
            raise Conflict(gateway.apply_detail) from None
        except (OSError, OutsideGatewayDir, InvalidGatewayValue) as exc:
            detail = f"cannot write the gateway file in FREESWITCH_GATEWAY_DIR: " \
                     f"{getattr(exc, 'strerror', None) or exc}"
            self.record(gateway, FAILED, detail)
            logger.error("SIP gateway %s: %s", gateway.name, detail)
            raise Unavailable(f"the gateway is saved, but {detail}") from None
        try:
            action = (self.control.load(gateway.name) if gateway.enabled
                      else self.control.unload(gateway.name))
        except FreeSwitchUnavailable:
            return PENDING, ("FreeSWITCH is unreachable: the gateway file is written and "
                             "will be applied when FreeSWITCH answers again")
        except SofiaRefused as exc:
            logger.warning("SIP gateway %s: %s", gateway.name, exc)
            return FAILED, str(exc)[:255]
        return APPLIED, f"{action} in FreeSWITCH"

    def _write_file(self, gateway):
        text = render_gateway_xml(self.spec_of(gateway)) if gateway.enabled else None
        for folder in self.gateway_dirs:
            if text is not None:
                write_gateway_file(folder, gateway.name, text)
            else:
                remove_gateway_file(folder, gateway.name)

    @staticmethod
    def record(gateway, state, detail):
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

    def remove(self, gateway):
        """Delete the file, tell FreeSWITCH, drop the row; False while FreeSWITCH is away."""
        try:
            for folder in self.gateway_dirs:
                remove_gateway_file(folder, gateway.name)
        except (OSError, OutsideGatewayDir) as exc:
            raise Unavailable(f"cannot remove the gateway file: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            self.control.unload(gateway.name)
        except FreeSwitchUnavailable:
            self.record(gateway, REMOVING, "FreeSWITCH is unreachable: it will be told when it "
                                           "answers again (the file is already deleted)")
            return False
        except SofiaRefused as exc:
            self.record(gateway, REMOVING, str(exc))
            raise BadGateway(f"the gateway file is deleted, but FreeSWITCH refused to drop it: "
                             f"{exc}") from None
        outbox = Outbox()
        with outbox.atomic():
            deleted = (SipGateway.delete()
                       .where((SipGateway.id == gateway.id)
                              & (SipGateway.version == gateway.version))
                       .execute())
            if deleted:
                self.notifier.gateway_deleted(gateway.name, outbox)
        return True
