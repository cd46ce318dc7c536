"""analytics schemas."""
