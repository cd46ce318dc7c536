"""HTTP resources: one folder per resource, each with routes.py and schemas.py."""
