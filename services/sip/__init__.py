"""The SIP domain: gateways (carrier trunks), their presets, registration state and tests."""
