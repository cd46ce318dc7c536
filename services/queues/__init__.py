"""The queues domain: queue and inbound-route configuration, hours, routing and the ACD."""
