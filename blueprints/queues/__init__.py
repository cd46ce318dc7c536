"""The queues resource: inbound queues (ACD), their members, hours and overflow actions."""
