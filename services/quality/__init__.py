"""services/quality."""
