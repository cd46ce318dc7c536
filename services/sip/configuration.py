"""A gateway configuration request: merged with what is stored and the preset, then checked."""
from freeswitch.esl.gateway_xml import DEFAULT_PORTS
from services.errors import Unprocessable
from services.sip.presets import CUSTOM, preset_of

CONFIG_FIELDS = ("provider", "host", "port", "transport", "username", "auth_username",
                 "register", "caller_id", "codecs", "expiry", "outbound_proxy", "enabled")

# Fields a new gateway takes from its preset when the request leaves them out
# (enabled defaults to true, the others to None).
_NEW_GATEWAY_DEFAULTS = ("register", "codecs", "expiry", "transport")


def field_errors(errors):
    """A 422 in flask-smorest's shape: {"errors": {"json": {field: [message]}}}."""
    return Unprocessable("the gateway configuration is not valid",
                         errors={"json": {k: [v] if isinstance(v, str) else v
                                          for k, v in errors.items()}})


def merged_values(gateway, args, created):
    """The configuration fields after this request: given values, else stored, else preset."""
    provider = args.get("provider") or (CUSTOM if created else gateway.provider)
    preset = preset_of(provider)
    values = {"provider": provider}
    for key in CONFIG_FIELDS[1:]:
        if key in args:
            values[key] = args[key]
        elif not created:
            values[key] = getattr(gateway, key)
        elif key in _NEW_GATEWAY_DEFAULTS:
            values[key] = preset[key]
        else:
            values[key] = True if key == "enabled" else None
    if values.get("host") is None:
        raise field_errors({"host": "Missing data for required field."})
    if "port" not in args:
        old_default = preset_of(gateway.provider).get("ports", {}).get(gateway.transport) \
            if not created else None
        # The port follows the transport while it is the preset's default for it.
        if created or (values["transport"] != gateway.transport
                       and gateway.port == old_default):
            values["port"] = preset["ports"].get(values["transport"],
                                                 DEFAULT_PORTS[values["transport"]])
    return values


def password_after(gateway, args, created):
    """The password the gateway will have: the given one, "(stored)" or None."""
    if "password" in args:
        return args["password"]
    if created or not gateway.password_encrypted:
        return None
    return "(stored)"


def check_consistency(values, password):
    """422 when the fields do not fit together (transport of the preset, registration creds)."""
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
        raise field_errors(errors)
