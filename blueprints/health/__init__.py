"""Health: is the service and what it depends on up."""
