"""Whether an agent's phone is registered to FreeSWITCH (`show registrations as json`)."""
from freeswitch.esl.commands import SHOW_REGISTRATIONS, parse_registrations
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from services.agents.endpoints import USER, parse_endpoint
from services.errors import BadGateway, Unavailable


class PhoneRegistry:
    """Asks FreeSWITCH, at the moment it matters, which directory users are registered.

    Asked rather than remembered from sofia::register events: a registration
    that expired while the events process was away must not look alive.
    """

    def __init__(self, commands):
        self.commands = commands

    def registered_users(self):
        """{(user, realm)} registered now; 503/502 when FreeSWITCH cannot tell."""
        try:
            return parse_registrations(self.commands.api(SHOW_REGISTRATIONS))
        except FreeSwitchUnavailable as exc:
            raise Unavailable(f"FreeSWITCH is unreachable; cannot tell whether the phone is "
                              f"registered ({exc})", headers={"Retry-After": "5"},
                              error_id="freeswitch_unavailable") from None
        except (FreeSwitchError, ValueError) as exc:
            raise BadGateway(f"FreeSWITCH did not list its registrations: {exc}") from None

    def is_registered(self, endpoint, registered=None):
        """True/False for a user/... endpoint; None for the others (nothing to register)."""
        parsed = parse_endpoint(endpoint)
        if parsed.kind != USER:
            return None
        if registered is None:
            registered = self.registered_users()
        return any(user == parsed.user and (parsed.domain is None or realm == parsed.domain)
                   for user, realm in registered)
