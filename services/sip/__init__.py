"""services/sip."""
