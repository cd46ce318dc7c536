"""freeswitch/events."""
