"""blueprints/access."""
