"""sip resource."""
