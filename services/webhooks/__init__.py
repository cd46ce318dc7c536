"""Webhooks: signed deliveries of the live channels' messages to integrators' URLs (issue 16).

fanout.py (matching, after each publish), dispatch.py (ordered delivery with
retries, run by the RQ webhook workers), sender.py (signing, the address check),
service.py (the webhooks and their deliveries, for the API).
"""
