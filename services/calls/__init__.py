"""services/calls."""
