"""Webhooks resource: /api/webhooks and their deliveries."""
