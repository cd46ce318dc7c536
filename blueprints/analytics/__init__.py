"""analytics resource."""
