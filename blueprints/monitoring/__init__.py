"""Monitoring: /metrics for Prometheus."""
