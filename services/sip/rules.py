"""The input rules of gateway values, for the request schemas (one definition: gateway_xml).

What passes them can be written into a gateway file and a sofia command safely.
"""
from freeswitch.esl.gateway_xml import (
    CALLER_ID,
    CODECS,
    GATEWAY_NAME,
    HOST,
    HOSTPORT,
    MAX_HOST_LENGTH,
    MAX_PASSWORD_LENGTH,
    PASSWORD,
    SIP_USER,
    TRANSPORTS,
    InvalidGatewayValue,
    check_codecs,
    check_host,
    has_surrogates,
    split_hostport,
)
from services.sip.presets import PROVIDER_PRESETS

PROVIDER_IDS = tuple(PROVIDER_PRESETS)

__all__ = ["CALLER_ID", "CODECS", "GATEWAY_NAME", "HOST", "HOSTPORT", "MAX_HOST_LENGTH",
           "MAX_PASSWORD_LENGTH", "PASSWORD", "SIP_USER", "TRANSPORTS", "InvalidGatewayValue",
           "check_codecs", "check_host", "has_surrogates", "split_hostport", "PROVIDER_IDS"]
