"""Agents' browser phones: the SIP registration config and credential rotation."""
