"""FreeSWITCH events of the SIP domain (gateway registration state)."""


def subscriptions(services):
    """Every SIP event this service handles, and its handler: name -> fn(event, outbox)."""
    return {"sofia::gateway_state": services.sip.on_gateway_state}
