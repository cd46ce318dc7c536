"""services/recordings."""
