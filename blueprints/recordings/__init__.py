"""recordings resource."""
