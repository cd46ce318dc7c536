"""The inbound routes resource: dialled number (exact or prefix) -> queue, agent or number."""
