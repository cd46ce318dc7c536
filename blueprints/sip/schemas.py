"""sip schemas."""
