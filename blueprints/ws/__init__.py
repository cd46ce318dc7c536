"""The /ws WebSocket: live channels."""
